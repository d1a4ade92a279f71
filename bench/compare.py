#!/usr/bin/env python3
"""cloudfilm against Orthanc, side by side, in one run on this machine.

    python3 bench/compare.py --preset small [--sizes 0,1000,10000,100000] [--bin target/release/cloudfilm]

Generates the dataset deterministically (gen_dataset.py), measures the machine's physical
limits (limits.py), measures DCMTK storescu's own ceiling against `storescp --ignore` (which
stores nothing), runs the harness (run_bench.py) against Orthanc (orthanc_peer.py: Debian's
Orthanc, default SQLite index, storage on the same disk) and against cloudfilm
(cloudfilm_peer.py: default configuration, encryption on, default durability), then prints a
markdown table: each row with both figures, the cloudfilm/Orthanc ratio, the issue's target
and whether it is met, and the share of the physical limit that bounds it. Results (JSON and
markdown) go to bench/results/. Loopback only; every phase is bounded in time.
"""
import argparse, json, os, re, subprocess, sys, tempfile, time

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "results")


def run(cmd, **kw):
    print("+", " ".join(cmd), file=sys.stderr, flush=True)
    return subprocess.run(cmd, check=True, **kw)


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def storescu_ceiling(files, associations, seconds=600):
    """storescu to DCMTK's own storescp --ignore: what the client can do at most."""
    port = free_port()
    with tempfile.TemporaryDirectory() as out:
        # --fork: one process per association, as a real SCP serves them in parallel.
        scp = subprocess.Popen(["/usr/bin/storescp", "--fork", "--ignore", "-od", out, str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            time.sleep(0.5)
            shares = [files[k::associations] for k in range(associations)]
            started = time.perf_counter()
            procs = [subprocess.Popen(["/usr/bin/storescu", "-v", "-aet", "BENCHSCU", "-aec", "ANY-SCP",
                                       "127.0.0.1", str(port), *share],
                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for share in shares]
            outputs = [p.communicate(timeout=seconds)[0] for p in procs]
            elapsed = time.perf_counter() - started
        finally:
            scp.terminate()
            scp.wait(10)
    ok = sum(o.count("Received Store Response (Success)") for o in outputs)
    return {"associations": associations, "instances_ok": ok, "seconds": elapsed, "instances_per_s": ok / elapsed}


def g(d, *path):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt(v, digits=1):
    return "–" if v is None else f"{v:,.{digits}f}"


def report(cf, oc, limits, ceiling, sizes):
    # The archive-like figure: random data written sequentially, fsync'd (dd of zeros is
    # short-cut by this virtual disk and overstates it).
    disk = g(limits, "fio_seq_write_end_fsync", "MB_per_s")
    http = g(limits, "loopback_http", "curl_MB_per_s")
    rows = []

    def row(name, c, o, unit, better, target=None, limit=None):
        ratio = (c / o) if (c and o) else None
        met = None
        if target and ratio is not None:
            kind, value = target
            met = ratio >= value if kind == "ratio>=" else ratio <= value
        rows.append((name, c, o, unit, ratio, target, met, limit))

    ph_c, ph_o = cf["phases"], oc["phases"]
    for name, key, clients in [("STOW-RS 1 client", "stow1", 1), ("STOW-RS 4 clients", "stow4", 4)]:
        c, o = g(ph_c, key, "MB_per_s"), g(ph_o, key, "MB_per_s")
        row(f"{name} (MB/s)", c, o, "MB/s", "higher", ("ratio>=", 3.0), (c / disk, "of the fsync'd disk limit") if c and disk else None)
        row(f"{name} (inst/s)", g(ph_c, key, "instances_per_s"), g(ph_o, key, "instances_per_s"), "inst/s", "higher")
    for name, key, n in [("C-STORE storescu 1 association", "cstore1", 1), ("C-STORE storescu 4 associations", "cstore4", 4)]:
        c, o = g(ph_c, key, "instances_per_s"), g(ph_o, key, "instances_per_s")
        ceil = g(ceiling, str(n), "instances_per_s")
        row(f"{name} (inst/s)", c, o, "inst/s", "higher", None, (c / ceil, "of storescu's own ceiling") if c and ceil else None)
    c, o = g(ph_c, "cpynet8", "instances_per_s"), g(ph_o, "cpynet8", "instances_per_s")
    row("C-STORE pynetdicom 8 associations (inst/s)", c, o, "inst/s", "higher", ("ratio>=", 3.0))
    for size in sizes:
        for kind, label, goal in [("by_patient_id", "PatientID", 1 / 3), ("by_name_wildcard", "name wildcard", 0.1),
                                  ("by_date_range", "date range", 0.1)]:
            c = g(ph_c, "qido", str(size), "queries", kind, "p99_ms")
            o = g(ph_o, "qido", str(size), "queries", kind, "p99_ms")
            n = g(ph_c, "qido", str(size), "studies_indexed")
            target = ("ratio<=", goal) if int(size) == 10000 else None
            row(f"QIDO-RS p99 by {label} @ {n or size} studies (ms)", c, o, "ms", "lower", target)
    for name, key in [("WADO-RS whole study 1 client", "wado1"), ("WADO-RS whole study 4 clients", "wado4")]:
        c, o = g(ph_c, key, "MB_per_s"), g(ph_o, key, "MB_per_s")
        row(f"{name} (MB/s)", c, o, "MB/s", "higher", ("ratio>=", 4.0), (c / http, "of loopback HTTP") if c and http else None)
    mods = sorted(set(g(ph_c, "rendered", "by_modality") or {}) | set(g(ph_o, "rendered", "by_modality") or {}))
    for m in mods:
        row(f"rendered frame p50, {m} (ms)", g(ph_c, "rendered", "by_modality", m, "p50_ms"),
            g(ph_o, "rendered", "by_modality", m, "p50_ms"), "ms", "lower", ("ratio<=", 0.5))
    row("peak server RSS (MB)", g(cf, "server_final", "hwm_mb"), g(oc, "server_final", "hwm_mb"), "MB", "lower", ("ratio<=", 0.5))

    # At 100 000 studies no row above twice its own value at 1 000.
    scale_rows = []
    if "1000" in map(str, sizes) and "100000" in map(str, sizes):
        for kind, label in [("by_patient_id", "PatientID"), ("by_name_wildcard", "name wildcard"), ("by_date_range", "date range")]:
            small = g(ph_c, "qido", "1000", "queries", kind, "p99_ms")
            large = g(ph_c, "qido", "100000", "queries", kind, "p99_ms")
            if small and large:
                scale_rows.append((label, small, large, large / small, large / small <= 2.0))

    L = ["| row | cloudfilm | Orthanc | cloudfilm / Orthanc | target | met | share of the physical limit |",
         "|---|---|---|---|---|---|---|"]
    for name, c, o, unit, ratio, target, met, limit in rows:
        t = "–" if not target else (f"≥ {target[1]:g}×" if target[0] == "ratio>=" else f"≤ {target[1]:.2g}×")
        m = "–" if met is None else ("yes" if met else "**no**")
        lim = "–" if not limit else f"{limit[0] * 100:.0f} % {limit[1]}"
        L.append(f"| {name} | {fmt(c)} | {fmt(o)} | {fmt(ratio, 2)} | {t} | {m} | {lim} |")
    if scale_rows:
        L += ["", "| cloudfilm QIDO-RS p99 | @ 1 000 (ms) | @ 100 000 (ms) | growth | ≤ 2× |", "|---|---|---|---|---|"]
        for label, small, large, growth, ok in scale_rows:
            L.append(f"| {label} | {fmt(small)} | {fmt(large)} | {fmt(growth, 2)}× | {'yes' if ok else '**no**'} |")
    ceil_line = ", ".join(f"{k} association(s) {fmt(v['instances_per_s'])} inst/s" for k, v in sorted(ceiling.items()))
    L += ["", f"storescu's own ceiling (to `storescp --ignore`): {ceil_line}.",
          f"Physical limits: fsync'd sequential write {fmt(disk)} MB/s (fio, 1 MiB blocks, fsync at end; "
          f"fsync after each 512 KiB {fmt(g(limits, 'fio_seq_write_fsync_each_512k', 'MB_per_s'))}, dd of zeros "
          f"{fmt(g(limits, 'dd_conv_fsync', 'MB_per_s'))}), AES-256-GCM "
          f"{fmt(g(limits, 'openssl_aes_256_gcm', 'GB_per_s'), 2)} GB/s per core, loopback HTTP {fmt(http)} MB/s.",
          f"Machine: {os.cpu_count()} cores; cloudfilm {cf.get('target', {}).get('version', '')}, "
          f"Orthanc {oc.get('target', {}).get('version', '')}; dataset {cf['dataset']['instances']} instances, "
          f"{cf['dataset']['MB']:.0f} MB."]
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
    ap.add_argument("--sizes", default="0,1000,10000,100000", help="QIDO index sizes (studies)")
    ap.add_argument("--phases", default="cstore1,cstore4,cpynet8,stow1,stow4,qido,wado1,wado4,rendered")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "cloudfilm"))
    ap.add_argument("--data", default="/tmp/bench-data", help="scratch (datasets, stores, limits)")
    ap.add_argument("--reuse", action="store_true", help="reuse existing limits/ceiling/Orthanc results of this preset")
    a = ap.parse_args()
    os.makedirs(RESULTS, exist_ok=True)
    if a.bin == ap.get_default("bin"):
        run(["cargo", "build", "--release", "--bin", "cloudfilm"], cwd=os.path.join(HERE, ".."))
    ds = os.path.join(a.data, f"ds-{a.preset}")
    if not os.path.exists(os.path.join(ds, "manifest.json")):
        run([sys.executable, os.path.join(HERE, "gen_dataset.py"), "--preset", a.preset, "--out", ds])
    limits_out = os.path.join(RESULTS, "limits")
    if not (a.reuse and os.path.exists(limits_out + ".json")):
        run([sys.executable, os.path.join(HERE, "limits.py"), "--scratch", os.path.join(a.data, "limits"), "--out", limits_out])
    ceiling_path = os.path.join(RESULTS, f"storescu-ceiling-{a.preset}.json")
    if not (a.reuse and os.path.exists(ceiling_path)):
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(ds) for f in fs if f.endswith(".dcm"))
        ceiling = {str(n): storescu_ceiling(files, n) for n in (1, 4)}
        json.dump(ceiling, open(ceiling_path, "w"), indent=1)
    ceiling = json.load(open(ceiling_path))
    bench_args = ["--qido-index-sizes", a.sizes, "--phases", a.phases]
    orthanc_out = os.path.join(RESULTS, f"orthanc-{a.preset}")
    if not (a.reuse and os.path.exists(orthanc_out + ".json")):
        run([sys.executable, os.path.join(HERE, "orthanc_peer.py"), "--dataset", ds, "--out", orthanc_out, "--", *bench_args])
    cloudfilm_out = os.path.join(RESULTS, f"cloudfilm-{a.preset}")
    run([sys.executable, os.path.join(HERE, "cloudfilm_peer.py"), "--bin", a.bin, "--dataset", ds, "--out", cloudfilm_out,
         "--", *bench_args])
    table = report(json.load(open(cloudfilm_out + ".json")), json.load(open(orthanc_out + ".json")),
                   json.load(open(limits_out + ".json")), ceiling, [s for s in a.sizes.split(",") if s and s != "0"])
    path = os.path.join(RESULTS, f"compare-{a.preset}.md")
    open(path, "w").write(table)
    print(table)
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
