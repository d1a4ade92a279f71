#!/usr/bin/env python3
"""Run cloudfilm (default configuration: encryption on, default durability) and benchmark it
with run_bench.py, like orthanc_peer.py does for Orthanc.

Creates a scratch data directory on the same disk, an organization, the harness's calling AE
(BENCHSCU) and an API key through the CLI, starts `cloudfilm serve` itself, runs
run_bench.py (HTTP Basic: key id / key), then stops that process by its pid.

--storage picks the backends, the way the test suite does (tests/interop/conftest.py):

  embedded          the default: SQLite index and blobs in the data directory
  postgres          index in a scratch database on the local PostgreSQL server
                    (postgres://127.0.0.1:5432, trust auth), blobs in the data directory
  postgres+garage   that, and the blobs in a bucket of a 3-node Garage cluster on loopback
                    (replication factor 3, consistent mode: tests/cluster/garage.py), its
                    nodes' files under --work on the same disk (--garage-nodes N for another
                    count, replication factor min(3, N)); --blobs-cache SIZE sets the
                    node's cache of the ciphertext it stored or read whole (`cache=` of the
                    s3:// URL; default cloudfilm's own, 1 GiB; 0 for none: every read from Garage)

The key ring stays in the data directory in every case. Scratch databases are named
bench_cf_<random> and dropped (WITH (FORCE)) at the end, also on failure or SIGTERM; the
Garage nodes are stopped by their pids and their files removed.

  python3 cloudfilm_peer.py --bin ../target/release/cloudfilm --dataset /tmp/bench-data/ds-small \\
      --out results/cloudfilm-small [--storage postgres+garage] [-- extra run_bench.py arguments]
"""
import argparse, json, os, shutil, signal, subprocess, sys, threading, time, uuid

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
POSTGRES_SERVER = os.environ.get("BENCH_POSTGRES", "postgres://127.0.0.1:5432/postgres")
PSQL_TIMEOUT = 60
STORAGE_VARS = ("CLOUDFILM_DATA", "CLOUDFILM_CONFIG", "CLOUDFILM_DATABASE", "CLOUDFILM_BLOBS", "CLOUDFILM_KEYS",
                "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL", "AWS_REGION", "AWS_DEFAULT_REGION")


def psql(sql):
    subprocess.run(["psql", "-q", "-v", "ON_ERROR_STOP=1", POSTGRES_SERVER, "-c", sql], check=True,
                   capture_output=True, timeout=PSQL_TIMEOUT)


def psql_value(sql):
    return subprocess.run(["psql", "-qAt", POSTGRES_SERVER, "-c", sql], check=True, capture_output=True,
                          text=True, timeout=PSQL_TIMEOUT).stdout.strip()


def on_sigterm(signum, frame):
    raise SystemExit(f"stopped by signal {signum}")  # so that every finally below runs


def main():
    argv = sys.argv[1:]
    extra = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "cloudfilm"))
    ap.add_argument("--dataset", required=True)
    ap.add_argument("--work", default=None, help="scratch (default /tmp/bench-data/cloudfilm[-STORAGE])")
    ap.add_argument("--http-port", type=int, default=18642)
    ap.add_argument("--dimse-port", type=int, default=11642)
    ap.add_argument("--storage", default="embedded", choices=["embedded", "postgres", "postgres+garage"])
    ap.add_argument("--garage-nodes", type=int, default=3,
                    help="postgres+garage: Garage nodes on this machine (replication factor min(3, N))")
    ap.add_argument("--blobs-cache", default=None, help="postgres+garage: the node cache's size (0: none)")
    ap.add_argument("--label", default=None, help="label in the report (default cloudfilm[ STORAGE])")
    ap.add_argument("--out", required=True)
    a = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, on_sigterm)
    binary = os.path.abspath(a.bin)
    suffix = "" if a.storage == "embedded" else "-" + a.storage.replace("+", "-")
    work = a.work or f"/tmp/bench-data/cloudfilm{suffix}"
    label = a.label or ("cloudfilm" if a.storage == "embedded" else f"cloudfilm {a.storage}")
    shutil.rmtree(work, ignore_errors=True)
    data = os.path.join(work, "data")
    os.makedirs(work)
    env = {k: v for k, v in os.environ.items() if k not in STORAGE_VARS}
    env = {"CLOUDFILM_LOG": "warn", **env}
    database, cluster, server, log = None, None, None, None
    storage_dir, described = data, "SQLite index and blobs in the data directory"
    rc = 1
    try:
        if a.storage.startswith("postgres"):
            database = f"bench_cf_{uuid.uuid4().hex[:12]}"
            psql(f"CREATE DATABASE {database}")
            env["CLOUDFILM_DATABASE"] = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + database
            described = "index in PostgreSQL on 127.0.0.1, blobs in the data directory"
        if a.storage.endswith("+garage"):
            sys.path.insert(0, os.path.join(REPO, "tests", "cluster"))
            from garage import GarageCluster  # noqa: E402
            # Garage logs every S3 request at info: warn keeps its logging out of the figures.
            saved = os.environ.get("RUST_LOG")
            os.environ["RUST_LOG"] = "garage=warn"
            try:
                cluster = GarageCluster(nodes=a.garage_nodes, bucket=f"bench-{uuid.uuid4().hex[:12]}",
                                        root=os.path.join(work, "garage"), timeout=60)
                cluster.start()
            finally:
                if saved is None:
                    os.environ.pop("RUST_LOG", None)
                else:
                    os.environ["RUST_LOG"] = saved
            print(f"Garage: {len(cluster.nodes)} nodes up in {cluster.start_seconds:.1f} s, "
                  f"pids {[n.process.pid for n in cluster.nodes]}", file=sys.stderr)
            cache = "" if a.blobs_cache is None else f"&cache={a.blobs_cache}"
            env.update({"CLOUDFILM_BLOBS": f"s3://{cluster.bucket}?endpoint={cluster.endpoint}&region={cluster.region}{cache}",
                        "AWS_ACCESS_KEY_ID": cluster.access_key_id, "AWS_SECRET_ACCESS_KEY": cluster.secret_access_key})
            storage_dir = os.path.join(work, "garage")
            garage_version = subprocess.run([cluster.binary, "--version"], capture_output=True, text=True).stdout.split("\n")[0]
            described = (f"index in PostgreSQL on 127.0.0.1, blobs in a {a.garage_nodes}-node Garage cluster on "
                         f"loopback (replication factor {cluster.replication_factor}, consistent; "
                         f"{garage_version.strip()}); node cache "
                         f"{'1GiB (default)' if a.blobs_cache is None else a.blobs_cache}")

        def cli(*args):
            return subprocess.run([binary, "--data", data, *args], check=True, capture_output=True, text=True,
                                  env=env, timeout=120).stdout

        cli("org", "create", "--code", "BENCH", "--name", "Benchmark hospital")
        cli("org", "ae", "add", "BENCH", "BENCHSCU", "--host", "127.0.0.1")
        key = cli("apikey", "create", "--org", "BENCH").strip().splitlines()[-1]
        version = subprocess.run(["git", "-C", HERE, "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
        log = open(os.path.join(work, "server.log"), "w")
        server = subprocess.Popen([binary, "--data", data, "serve", "--http", f"127.0.0.1:{a.http_port}",
                                   "--dimse", f"127.0.0.1:{a.dimse_port}"], stdout=subprocess.PIPE, stderr=log, text=True, env=env)
        first = server.stdout.readline()
        if "listening" not in first:
            raise SystemExit(f"cloudfilm did not start: {first!r}; see {log.name}")
        threading.Thread(target=server.stdout.read, daemon=True).start()
        target_version = f"cloudfilm {version}" + ("" if a.storage == "embedded" else f", {a.storage}")
        cmd = [sys.executable, os.path.join(HERE, "run_bench.py"), "--dataset", a.dataset,
               "--dicomweb", f"http://127.0.0.1:{a.http_port}/dicom-web",
               "--dimse-port", str(a.dimse_port), "--dimse-aet", "CLOUDFILM",
               "--user", key.split(".")[0], "--password", key, "--pid", str(server.pid),
               "--label", label, "--target-version", target_version,
               "--storage-dir", storage_dir, "--work", os.path.join(work, "work"), "--out", a.out, *extra]
        # Waited for in short steps: a SIGTERM the kernel hands to the reader thread above would
        # otherwise wait for the harness to end before this thread ran its handler.
        harness = subprocess.Popen(cmd)
        try:
            while True:
                try:
                    rc = harness.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    pass
        finally:
            if harness.poll() is None:
                harness.terminate()  # the harness this script started, by its pid
                try:
                    harness.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    harness.kill()
                    harness.wait(10)
        if os.path.exists(a.out + ".json"):
            # What the figures were measured on; the database's size is the index's.
            res = json.load(open(a.out + ".json"))
            res["configuration"] = {"storage": a.storage, "blobs_cache": a.blobs_cache, "described": described}
            if database:
                res["postgres_database_bytes"] = int(psql_value(f"SELECT pg_database_size('{database}')") or 0)
            with open(a.out + ".json", "w") as f:
                json.dump(res, f, indent=1, ensure_ascii=False)
    finally:
        if server is not None:
            server.send_signal(signal.SIGTERM)  # the process this script started, by its pid
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(10)
        if log is not None:
            log.close()
        if cluster is not None:
            cluster.stop()  # each node by its pid; the root given is kept by stop(): removed below
            shutil.rmtree(os.path.join(work, "garage"), ignore_errors=True)
        if database:
            try:
                psql(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
            except (subprocess.SubprocessError, OSError) as e:
                print(f"could not drop scratch database {database}: {e}", file=sys.stderr)
    sys.exit(rc)


if __name__ == "__main__":
    main()
