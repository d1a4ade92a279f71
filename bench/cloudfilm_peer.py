#!/usr/bin/env python3
"""Run cloudfilm (default configuration: encryption on, default durability) and benchmark it
with run_bench.py, like orthanc_peer.py does for Orthanc.

Creates a scratch data directory on the same disk, an organization, the harness's calling AE
(BENCHSCU) and an API key through the CLI, starts `cloudfilm serve` itself, runs
run_bench.py (HTTP Basic: key id / key), then stops that process by its pid.

  python3 cloudfilm_peer.py --bin ../target/release/cloudfilm --dataset /tmp/bench-data/ds-small \\
      --out results/cloudfilm-small [-- extra run_bench.py arguments]
"""
import argparse, os, shutil, signal, subprocess, sys, threading, time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "cloudfilm"))
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--work", default="/tmp/bench-data/cloudfilm")
    ap.add_argument("--http-port", type=int, default=18642)
    ap.add_argument("--dimse-port", type=int, default=11642)
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    binary = os.path.abspath(a.bin)
    shutil.rmtree(a.work, ignore_errors=True)
    data = os.path.join(a.work, "data")
    os.makedirs(a.work)
    env = {"CLOUDFILM_LOG": "warn", **os.environ}

    def cli(*args):
        return subprocess.run([binary, "--data", data, *args], check=True, capture_output=True, text=True, env=env).stdout

    cli("org", "create", "--code", "BENCH", "--name", "Benchmark hospital")
    cli("org", "ae", "add", "BENCH", "BENCHSCU", "--host", "127.0.0.1")
    key = cli("apikey", "create", "--org", "BENCH").strip().splitlines()[-1]
    version = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    log = open(os.path.join(a.work, "server.log"), "w")
    server = subprocess.Popen([binary, "--data", data, "serve", "--http", f"127.0.0.1:{a.http_port}",
                               "--dimse", f"127.0.0.1:{a.dimse_port}"], stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    try:
        first = server.stdout.readline()
        if "listening" not in first:
            raise SystemExit(f"cloudfilm did not start: {first!r}")
        threading.Thread(target=server.stdout.read, daemon=True).start()
        cmd = [sys.executable, os.path.join(HERE, "run_bench.py"), "--dataset", a.dataset,
               "--dicomweb", f"http://127.0.0.1:{a.http_port}/dicom-web",
               "--dimse-port", str(a.dimse_port), "--dimse-aet", "CLOUDFILM",
               "--user", key.split(".")[0], "--password", key, "--pid", str(server.pid),
               "--label", "cloudfilm", "--target-version", f"cloudfilm {version}",
               "--storage-dir", data, "--work", os.path.join(a.work, "work"), "--out", a.out, *extra]
        rc = subprocess.run(cmd).returncode
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
        log.close()
    sys.exit(rc)


if __name__ == "__main__":
    main()
