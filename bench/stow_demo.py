#!/usr/bin/env python3
"""STOW-RS ingest rate on the demo data, against the real binary (loopback only).

Starts `cloudfilm demo` in a scratch data directory, reads the generated instances back over
WADO-RS, then stores them again into fresh organizations (SOP Instance UIDs are unique per
organization) with 1 and 4 concurrent clients, 50 instances per request, and prints
instances/s and MB/s. Every loop is bounded in count and time.

    python3 bench/stow_demo.py --bin target/release/cloudfilm [--scale 1.0] [--clients 1,4]
"""
import argparse, concurrent.futures, os, re, signal, subprocess, sys, tempfile, threading, time, uuid
import requests


def start_demo(binary, data, scale):
    proc = subprocess.Popen([binary, "--data", data, "demo", "--http", "127.0.0.1:0", "--scale", str(scale)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env={**os.environ, "CLOUDFILM_LOG": "warn"})
    banner, deadline = {}, time.time() + 300
    while time.time() < deadline and "Sample studies" not in banner:
        line = proc.stdout.readline()
        if not line:
            raise SystemExit("the demo did not start")
        key, _, value = line.partition(":")
        banner[key.strip()] = value.strip()
    threading.Thread(target=proc.stdout.read, daemon=True).start()
    return proc, banner["DICOMweb"], banner["API key"]


def multipart_parts(response):
    boundary = re.search(r"boundary=([^;]+)", response.headers["Content-Type"]).group(1).strip('"').encode()
    out = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        out.append(chunk.split(b"\r\n\r\n", 1)[1][:-2])
    return out


def stow(base, key, instances):
    boundary = uuid.uuid4().hex
    body = b"".join(b"--%s\r\nContent-Type: application/dicom\r\n\r\n%s\r\n" % (boundary.encode(), i) for i in instances)
    body += b"--%s--\r\n" % boundary.encode()
    r = requests.post(f"{base}/studies", data=body, timeout=600, headers={
        "Authorization": f"Bearer {key}",
        "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'})
    if r.status_code != 200:
        raise SystemExit(f"STOW answered {r.status_code}: {r.headers.get('Warning')}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", default="target/release/cloudfilm")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--clients", default="1,4")
    ap.add_argument("--batch", type=int, default=50)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as data:
        proc, base, key = start_demo(args.bin, data, args.scale)
        try:
            auth = {"Authorization": f"Bearer {key}"}
            studies = requests.get(f"{base}/studies", headers=auth, timeout=60).json()
            instances = []
            for s in studies:
                uid = s["0020000D"]["Value"][0]
                r = requests.get(f"{base}/studies/{uid}", timeout=600,
                                 headers={**auth, "Accept": 'multipart/related; type="application/dicom"'})
                instances += multipart_parts(r)
            total = sum(map(len, instances))
            print(f"demo data: {len(instances)} instances, {total / 1e6:.1f} MB in {len(studies)} studies")
            for n, clients in enumerate(int(c) for c in args.clients.split(",")):
                code = f"BENCH{n}"
                subprocess.run([args.bin, "--data", data, "org", "create", "--code", code, "--name", code],
                               check=True, capture_output=True)
                new_key = subprocess.run([args.bin, "--data", data, "apikey", "create", "--org", code],
                                         check=True, capture_output=True, text=True).stdout.strip().splitlines()[-1]
                batches = [instances[i:i + args.batch] for i in range(0, len(instances), args.batch)]
                started = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(clients) as pool:
                    list(pool.map(lambda b: stow(base, new_key, b), batches))
                elapsed = time.perf_counter() - started
                print(f"STOW-RS {clients} client(s): {len(instances) / elapsed:.1f} instances/s, "
                      f"{total / 1e6 / elapsed:.1f} MB/s ({elapsed:.2f} s)")
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()


if __name__ == "__main__":
    main()
