#!/usr/bin/env python3
"""C-STORE ingest rate with DCMTK's storescu on the demo data, against the real binary.

Starts `cloudfilm demo` in a scratch data directory, writes the generated instances to files
(read back over WADO-RS), registers a calling AE per run in a fresh organization (SOP Instance
UIDs are unique per organization) and sends the files with /usr/bin/storescu: one association
carrying all of them, then N storescu processes with a share each in parallel. Loopback only;
every run is bounded in time.

    python3 bench/cstore_demo.py --bin target/release/cloudfilm [--scale 1.0] [--parallel 4]
"""
import argparse, os, re, signal, subprocess, tempfile, threading, time
import requests

STORESCU = "/usr/bin/storescu"


def start_demo(binary, data, scale):
    proc = subprocess.Popen([binary, "--data", data, "demo", "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0",
                             "--scale", str(scale)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "CLOUDFILM_LOG": "warn"})
    banner, deadline = {}, time.time() + 300
    while time.time() < deadline and "Sample studies" not in banner:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the demo did not start")
        key, _, value = line.partition(":")
        banner[key.strip()] = value.strip()
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    port = int(re.search(r":(\d+)", banner["DIMSE"].split(" at ")[1]).group(1))
    return proc, banner["DICOMweb"], banner["API key"], port


def export(base, key, out):
    auth = {"Authorization": f"Bearer {key}"}
    files = []
    for study in requests.get(f"{base}/studies", headers=auth, timeout=60).json():
        uid = study["0020000D"]["Value"][0]
        r = requests.get(f"{base}/studies/{uid}", timeout=600,
                         headers={**auth, "Accept": 'multipart/related; type="application/dicom"'})
        boundary = re.search(r"boundary=([^;]+)", r.headers["Content-Type"]).group(1).strip('"').encode()
        for part in r.content.split(b"--" + boundary)[1:]:
            if part.startswith(b"--"):
                break
            path = os.path.join(out, f"{len(files):05d}.dcm")
            with open(path, "wb") as f:
                f.write(part.split(b"\r\n\r\n", 1)[1][:-2])
            files.append(path)
    return files


def run(binary, data, port, files, processes, n):
    code, ae = f"CSTORE{n}", f"SCU{n}"
    subprocess.run([binary, "--data", data, "org", "create", "--code", code, "--name", code], check=True, capture_output=True)
    subprocess.run([binary, "--data", data, "org", "ae", "add", code, ae], check=True, capture_output=True)
    shares = [files[i::processes] for i in range(processes)]
    started = time.perf_counter()
    procs = [subprocess.Popen([STORESCU, "-v", "-aet", ae, "-aec", "CLOUDFILM", "127.0.0.1", str(port), *share],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for share in shares]
    outputs = [p.communicate(timeout=1800)[0] for p in procs]
    elapsed = time.perf_counter() - started
    ok = sum(o.count("Received Store Response (Success)") for o in outputs)
    size = sum(os.path.getsize(f) for f in files)
    print(f"C-STORE storescu, {processes} association(s): {ok}/{len(files)} ok, {ok / elapsed:.1f} instances/s, "
          f"{size / 1e6 / elapsed:.1f} MB/s ({elapsed:.2f} s)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cloudfilm")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--parallel", type=int, default=4)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data, tempfile.TemporaryDirectory() as files_dir:
        proc, base, key, port = start_demo(args.bin, data, args.scale)
        try:
            files = export(base, key, files_dir)
            print(f"demo data: {len(files)} instances, {sum(map(os.path.getsize, files)) / 1e6:.1f} MB")
            run(args.bin, data, port, files, 1, 1)
            run(args.bin, data, port, files, args.parallel, 2)
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
