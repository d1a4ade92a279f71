#!/usr/bin/env python3
"""Rendered-frame speed of two builds of the same source, for the demo command's trade-off:
libjpeg-turbo built with nasm (SIMD, what `tests/setup` machines build) against the same built
without it (what `./demo` builds on a machine without nasm). Each binary runs `cloudfilm demo`
in a scratch directory; every instance with pixels (the reports have none) is rendered as JPEG and PNG, sequentially,
a bounded number of rounds. Prints milliseconds per frame for each build, the mean and the largest (slowest) frame
(median of rounds).

    python3 bench/render_builds.py target/release/cloudfilm target/demo-without-build-tools/release/cloudfilm
"""
import argparse, statistics, sys, tempfile, time
import requests

from stow_demo import start_demo


def instance_paths(base, key):
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/dicom+json"}
    found = requests.get(f"{base}/instances", headers=headers, params={"limit": 200}, timeout=60).json()
    paths = []
    for i in found:
        study, series, sop = (i[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
        paths.append(f"{base}/studies/{study}/series/{series}/instances/{sop}/frames/1/rendered")
    return paths


def per_frame_ms(binary, rounds, accept, scale):
    with tempfile.TemporaryDirectory() as data:
        proc, base, key = start_demo(binary, data, scale)
        try:
            paths = instance_paths(base, key)
            headers = {"Authorization": f"Bearer {key}", "Accept": accept}
            session = requests.Session()
            # Warm the caches; instances without pixels (reports) answer 404 and are left out.
            paths = [p for p in paths if session.get(p, headers=headers, timeout=120).status_code == 200]
            means, slowest = [], []
            deadline = time.time() + 600
            for _ in range(rounds):
                each = []
                for p in paths:
                    started = time.perf_counter()
                    r = session.get(p, headers=headers, timeout=120)
                    each.append((time.perf_counter() - started) * 1000)
                    if r.status_code != 200:
                        raise SystemExit(f"{p} answered {r.status_code}")
                means.append(sum(each) / len(each))
                slowest.append(max(each))
                if time.time() > deadline:
                    break
            return statistics.median(means), statistics.median(slowest), len(paths)
        finally:
            proc.terminate()
            proc.wait(timeout=30)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("with_simd")
    ap.add_argument("without_simd")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--scale", type=float, default=0.1)
    args = ap.parse_args()
    print("| build | frames | JPEG ms/frame (mean) | JPEG ms, largest frame | PNG ms/frame (mean) | PNG ms, largest frame |")
    print("|---|---|---|---|---|---|")
    for label, binary in [("libjpeg-turbo with nasm (SIMD)", args.with_simd), ("without nasm", args.without_simd)]:
        jpeg, jpeg_max, n = per_frame_ms(binary, args.rounds, "image/jpeg", args.scale)
        png, png_max, _ = per_frame_ms(binary, args.rounds, "image/png", args.scale)
        print(f"| {label} | {n} | {jpeg:.1f} | {jpeg_max:.1f} | {png:.1f} | {png_max:.1f} |")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
