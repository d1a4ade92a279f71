#!/usr/bin/env python3
"""cloudfilm against Orthanc, side by side, in one run on this machine.

    python3 bench/compare.py --preset small [--sizes 0,1000,10000,100000] [--bin target/release/cloudfilm]
                             [--configs all] [--reuse] [--results DIR]

Generates the dataset deterministically (gen_dataset.py), measures the machine's physical
limits (limits.py), measures DCMTK storescu's own ceiling against `storescp --ignore` (which
stores nothing), runs the harness (run_bench.py) against Orthanc (orthanc_peer.py: Debian's
Orthanc, default SQLite index, storage on the same disk) and against cloudfilm
(cloudfilm_peer.py: default configuration, encryption on, default durability), then prints a
markdown table: each row with both figures, the cloudfilm/Orthanc ratio, the issue's target
and whether it is met, and the share of the physical limit that bounds it. Results (JSON and
markdown) go to bench/results/. Loopback only; every phase is bounded in time.

--configs picks the configurations (default orthanc,cloudfilm: the above). `all` adds
orthanc-postgresql (Orthanc with Debian's PostgreSQL index plugin, orthanc-postgresql; DICOM
files on the same disk) and cloudfilm-postgres+garage (index in PostgreSQL, blobs in a 3-node
Garage cluster on loopback, replication factor 3), both on the local PostgreSQL server
(127.0.0.1:5432) in scratch databases the peers make and drop. Then the markdown also has the
cluster pair against the targets of issue 14 (STOW-RS 4 clients >= 1.5x, QIDO-RS p99 at
100 000 studies <= 0.1x and within 2x of its own value at 1 000, WADO-RS >= 3x) and the cost
of the cluster configuration against cloudfilm's embedded default; with
cloudfilm-postgres+garage-nocache (the same without the node cache, `cache=0`: every blob read
is a GET from Garage; its blob phases only) a table of what that cache does. --reuse keeps the limits,
the storescu ceiling and both Orthanc runs of a previous invocation.
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


# The configurations compare.py can run, in the order it runs them (Orthanc first, as --reuse
# keeps Orthanc's runs). name: (peer script, results/work name, peer arguments, label)
CONFIGS = {
    "orthanc": ("orthanc_peer.py", "orthanc", [], "Orthanc"),
    "orthanc-postgresql": ("orthanc_peer.py", "orthanc-postgresql", ["--postgres"], "Orthanc PostgreSQL"),
    "cloudfilm": ("cloudfilm_peer.py", "cloudfilm", [], "cloudfilm"),
    "cloudfilm-postgres+garage": ("cloudfilm_peer.py", "cloudfilm-postgres-garage", ["--storage", "postgres+garage"],
                                  "cloudfilm PG+Garage"),
    "cloudfilm-postgres+garage-nocache": ("cloudfilm_peer.py", "cloudfilm-postgres-garage-nocache",
                                          ["--storage", "postgres+garage", "--blobs-cache", "0"],
                                          "cloudfilm PG+Garage without its node cache"),
    "cloudfilm-postgres+garage-1node": ("cloudfilm_peer.py", "cloudfilm-postgres-garage-1node",
                                        ["--storage", "postgres+garage", "--garage-nodes", "1"],
                                        "cloudfilm PG+Garage on one Garage node"),
}
DEFAULT_CONFIGS = "orthanc,cloudfilm"
CLUSTER = ("orthanc-postgresql", "cloudfilm-postgres+garage", "cloudfilm-postgres+garage-nocache",
           "cloudfilm-postgres+garage-1node")
# These variants of cloudfilm-postgres+garage differ in what reads or writes blobs only: the
# index phases are not rerun.
BLOB_VARIANTS = ("cloudfilm-postgres+garage-nocache", "cloudfilm-postgres+garage-1node")
BLOB_PHASES = ("stow1", "stow4", "wado1", "wado4", "rendered")

QIDO_KINDS = [("by_patient_id", "PatientID"), ("by_name_wildcard", "name wildcard"), ("by_date_range", "date range")]

# Issue 4: cloudfilm (embedded) against Orthanc (default SQLite index).
ISSUE4 = {"stow": {"stow1": 3.0, "stow4": 3.0}, "cpynet8": 3.0, "qido_size": 10000,
          "qido": {"by_patient_id": 1 / 3, "by_name_wildcard": 0.1, "by_date_range": 0.1},
          "wado": 4.0, "rendered": 0.5, "rss": 0.5}
# Issue 14: cloudfilm on PostgreSQL + Garage against Orthanc with its PostgreSQL index plugin.
ISSUE14 = {"stow": {"stow4": 1.5}, "cpynet8": None, "qido_size": 100000,
           "qido": {"by_patient_id": 0.1, "by_name_wildcard": 0.1, "by_date_range": 0.1},
           "wado": 3.0, "rendered": None, "rss": None}


def pair_rows(cf, oc, limits, ceiling, sizes, targets, other="Orthanc"):
    """Rows comparing cf with oc: (name, c, o, unit, ratio, target, met, limit)."""
    # The archive-like figure: random data written sequentially, fsync'd (dd of zeros is
    # short-cut by this virtual disk and overstates it).
    disk = g(limits, "fio_seq_write_end_fsync", "MB_per_s")
    http = g(limits, "loopback_http", "curl_MB_per_s")
    rows = []

    def row(name, c, o, unit, better, target=None, limit=None):
        ratio = (c / o) if (c and o) else None
        met = None
        if target and target[1] is not None and ratio is not None:
            kind, value = target
            met = ratio >= value if kind == "ratio>=" else ratio <= value
        rows.append((name, c, o, unit, ratio, target if target and target[1] is not None else None, met, limit))

    ph_c, ph_o = cf["phases"], oc["phases"]
    for name, key, clients in [("STOW-RS 1 client", "stow1", 1), ("STOW-RS 4 clients", "stow4", 4)]:
        c, o = g(ph_c, key, "MB_per_s"), g(ph_o, key, "MB_per_s")
        row(f"{name} (MB/s)", c, o, "MB/s", "higher", ("ratio>=", targets["stow"].get(key)),
            (c / disk, "of the fsync'd disk limit") if c and disk else None)
        row(f"{name} (inst/s)", g(ph_c, key, "instances_per_s"), g(ph_o, key, "instances_per_s"), "inst/s", "higher")
    for name, key, n in [("C-STORE storescu 1 association", "cstore1", 1), ("C-STORE storescu 4 associations", "cstore4", 4)]:
        c, o = g(ph_c, key, "instances_per_s"), g(ph_o, key, "instances_per_s")
        ceil = g(ceiling, str(n), "instances_per_s")
        row(f"{name} (inst/s)", c, o, "inst/s", "higher", None, (c / ceil, "of storescu's own ceiling") if c and ceil else None)
    c, o = g(ph_c, "cpynet8", "instances_per_s"), g(ph_o, "cpynet8", "instances_per_s")
    row("C-STORE pynetdicom 8 associations (inst/s)", c, o, "inst/s", "higher", ("ratio>=", targets["cpynet8"]))
    for size in sizes:
        for kind, label in QIDO_KINDS:
            c = g(ph_c, "qido", str(size), "queries", kind, "p99_ms")
            o = g(ph_o, "qido", str(size), "queries", kind, "p99_ms")
            n = g(ph_c, "qido", str(size), "studies_indexed")
            m = g(ph_o, "qido", str(size), "studies_indexed")
            target = ("ratio<=", targets["qido"][kind]) if int(size) == targets["qido_size"] else None
            # A fill that hit its time bound leaves fewer studies than asked: say so.
            note = f" ({other} at {m})" if (n and m and n != m) else ""
            row(f"QIDO-RS p99 by {label} @ {n or size} studies{note} (ms)", c, o, "ms", "lower", target)
    for name, key in [("WADO-RS whole study 1 client", "wado1"), ("WADO-RS whole study 4 clients", "wado4")]:
        c, o = g(ph_c, key, "MB_per_s"), g(ph_o, key, "MB_per_s")
        row(f"{name} (MB/s)", c, o, "MB/s", "higher", ("ratio>=", targets["wado"]), (c / http, "of loopback HTTP") if c and http else None)
    mods = sorted(set(g(ph_c, "rendered", "by_modality") or {}) | set(g(ph_o, "rendered", "by_modality") or {}))
    for m in mods:
        row(f"rendered frame p50, {m} (ms)", g(ph_c, "rendered", "by_modality", m, "p50_ms"),
            g(ph_o, "rendered", "by_modality", m, "p50_ms"), "ms", "lower", ("ratio<=", targets["rendered"]))
    row("peak server RSS (MB)", g(cf, "server_final", "hwm_mb"), g(oc, "server_final", "hwm_mb"), "MB", "lower",
        ("ratio<=", targets["rss"]))
    return rows


def pair_table(cf, oc, limits, ceiling, sizes, targets, names=("cloudfilm", "Orthanc"), target_header="target"):
    rows = pair_rows(cf, oc, limits, ceiling, sizes, targets, other=names[1])
    L = [f"| row | {names[0]} | {names[1]} | {names[0]} / {names[1]} | {target_header} | met | share of the physical limit |",
         "|---|---|---|---|---|---|---|"]
    for name, c, o, unit, ratio, target, met, limit in rows:
        t = "–" if not target else (f"≥ {target[1]:g}×" if target[0] == "ratio>=" else f"≤ {target[1]:.2g}×")
        m = "–" if met is None else ("yes" if met else "**no**")
        lim = "–" if not limit else f"{limit[0] * 100:.0f} % {limit[1]}"
        L.append(f"| {name} | {fmt(c)} | {fmt(o)} | {fmt(ratio, 2)} | {t} | {m} | {lim} |")
    return L


def growth_table(cf, sizes, name="cloudfilm"):
    """At 100 000 studies no QIDO-RS row above twice its own value at 1 000."""
    scale_rows = []
    if "1000" in map(str, sizes) and "100000" in map(str, sizes):
        for kind, label in QIDO_KINDS:
            small = g(cf["phases"], "qido", "1000", "queries", kind, "p99_ms")
            large = g(cf["phases"], "qido", "100000", "queries", kind, "p99_ms")
            if small and large:
                scale_rows.append((label, small, large, large / small, large / small <= 2.0))
    if not scale_rows:
        return []
    L = ["", f"| {name} QIDO-RS p99 | @ 1 000 (ms) | @ 100 000 (ms) | growth | ≤ 2× |", "|---|---|---|---|---|"]
    for label, small, large, growth, ok in scale_rows:
        L.append(f"| {label} | {fmt(small)} | {fmt(large)} | {fmt(growth, 2)}× | {'yes' if ok else '**no**'} |")
    return L


def metrics(results, sizes):
    """(name, getter) of every figure the cost table compares, one configuration against another."""
    out = []
    for name, key in [("STOW-RS 1 client", "stow1"), ("STOW-RS 4 clients", "stow4")]:
        out.append((f"{name} (MB/s)", lambda r, k=key: g(r, "phases", k, "MB_per_s")))
    for name, key in [("C-STORE storescu 1 association", "cstore1"), ("C-STORE storescu 4 associations", "cstore4"),
                      ("C-STORE pynetdicom 8 associations", "cpynet8")]:
        out.append((f"{name} (inst/s)", lambda r, k=key: g(r, "phases", k, "instances_per_s")))
    for size in sizes:
        for kind, label in QIDO_KINDS:
            out.append((f"QIDO-RS p99 by {label} @ {size} studies (ms)",
                        lambda r, s=str(size), k=kind: g(r, "phases", "qido", s, "queries", k, "p99_ms")))
    for size in sizes:
        out.append((f"index fill @ {size} studies (studies/s)",
                    lambda r, s=str(size): g(r, "phases", "qido", s, "fill", "studies_per_s")))
    for name, key in [("WADO-RS whole study 1 client", "wado1"), ("WADO-RS whole study 4 clients", "wado4")]:
        out.append((f"{name} (MB/s)", lambda r, k=key: g(r, "phases", k, "MB_per_s")))
    mods = sorted(set().union(*[set(g(r, "phases", "rendered", "by_modality") or {}) for r in results if r]))
    for m in mods:
        out.append((f"rendered frame p50, {m} (ms)", lambda r, m=m: g(r, "phases", "rendered", "by_modality", m, "p50_ms")))
    out.append(("peak server RSS (MB)", lambda r: g(r, "server_final", "hwm_mb")))
    return out


def cost_table(embedded, cluster, oc, oc_pg, sizes):
    """What the cluster configuration costs against the embedded default, same machine and
    dataset; Orthanc's own PostgreSQL / SQLite ratio beside it when both Orthanc runs exist."""
    with_orthanc = oc is not None and oc_pg is not None
    head = "| row | cloudfilm embedded | cloudfilm PG+Garage | PG+Garage / embedded |"
    sep = "|---|---|---|---|"
    if with_orthanc:
        head += " Orthanc SQLite | Orthanc PostgreSQL | Orthanc PostgreSQL / SQLite |"
        sep += "---|---|---|"
    L = [head, sep]

    def ratio(a, b):
        return (b / a) if (a and b) else None

    for name, get in metrics([embedded, cluster, oc, oc_pg], sizes):
        e, c = get(embedded), get(cluster)
        line = f"| {name} | {fmt(e)} | {fmt(c)} | {fmt(ratio(e, c), 2)} |"
        if with_orthanc:
            s, p = get(oc), get(oc_pg)
            line += f" {fmt(s)} | {fmt(p)} | {fmt(ratio(s, p), 2)} |"
        L.append(line)
    return L


def variant_table(base, variant, oc_pg, names):
    """The blob phases of cloudfilm PG+Garage and of one variant, Orthanc PG beside them when it ran."""
    a, b = names
    L = [f"| row | {a} | {b} | {b} / {a} | Orthanc PG | {b} / Orthanc PG |", "|---|---|---|---|---|---|"]
    rows = {"STOW-RS 1 client (MB/s)", "STOW-RS 4 clients (MB/s)", "WADO-RS whole study 1 client (MB/s)",
             "WADO-RS whole study 4 clients (MB/s)"}
    for name, get in metrics([base, variant], []):
        if name not in rows and not name.startswith("rendered"):
            continue
        c, n, o = get(base), get(variant), get(oc_pg) if oc_pg else None
        ratio = (n / c) if (c and n) else None
        vs = (n / o) if (n and o) else None
        L.append(f"| {name} | {fmt(c)} | {fmt(n)} | {fmt(ratio, 2)} | {fmt(o)} | {fmt(vs, 2)} |")
    return L


def footer(results, limits, ceiling):
    disk = g(limits, "fio_seq_write_end_fsync", "MB_per_s")
    http = g(limits, "loopback_http", "curl_MB_per_s")
    ceil_line = ", ".join(f"{k} association(s) {fmt(v['instances_per_s'])} inst/s" for k, v in sorted(ceiling.items()))
    any_res = next(iter(results.values()))
    if set(results) <= {"cloudfilm", "orthanc"}:
        versions = (f"cloudfilm {g(results, 'cloudfilm', 'target', 'version') or ''}, "
                    f"Orthanc {g(results, 'orthanc', 'target', 'version') or ''}")
    else:
        versions = "; ".join(f"{CONFIGS[n][3]}: {g(r, 'target', 'version') or ''}" for n, r in results.items())
    return ["", f"storescu's own ceiling (to `storescp --ignore`): {ceil_line}.",
            f"Physical limits: fsync'd sequential write {fmt(disk)} MB/s (fio, 1 MiB blocks, fsync at end; "
            f"fsync after each 512 KiB {fmt(g(limits, 'fio_seq_write_fsync_each_512k', 'MB_per_s'))}, dd of zeros "
            f"{fmt(g(limits, 'dd_conv_fsync', 'MB_per_s'))}), AES-256-GCM "
            f"{fmt(g(limits, 'openssl_aes_256_gcm', 'GB_per_s'), 2)} GB/s per core, loopback HTTP {fmt(http)} MB/s.",
            f"Machine: {os.cpu_count()} cores; {versions}; dataset {any_res['dataset']['instances']} instances, "
            f"{any_res['dataset']['MB']:.0f} MB."]


def report(results, limits, ceiling, sizes):
    """The markdown of every comparison the configurations that ran allow."""
    r = results.get
    cluster_run = any(n in results for n in CLUSTER)
    L = []
    if r("cloudfilm") and r("orthanc"):
        if cluster_run:
            L += ["### cloudfilm (embedded) against Orthanc (SQLite index): the targets of issue 4", ""]
        L += pair_table(r("cloudfilm"), r("orthanc"), limits, ceiling, sizes, ISSUE4)
        L += growth_table(r("cloudfilm"), sizes)
    if r("cloudfilm-postgres+garage") and r("orthanc-postgresql"):
        L += ["" if L else None, "### cloudfilm on PostgreSQL + Garage against Orthanc with its PostgreSQL index: "
              "the targets of issue 14", ""]
        L += pair_table(r("cloudfilm-postgres+garage"), r("orthanc-postgresql"), limits, ceiling, sizes, ISSUE14,
                        names=("cloudfilm PG+Garage", "Orthanc PG"), target_header="target (issue 14)")
        L += growth_table(r("cloudfilm-postgres+garage"), sizes, name="cloudfilm PG+Garage")
        L += ["", "Both indexes are on the same local PostgreSQL server; Orthanc PG keeps its DICOM files on "
              "the local disk, cloudfilm PG+Garage its blobs in a 3-node Garage cluster (replication factor 3) "
              "on this one machine and disk, so each blob is written three times. Peak RSS is the archive "
              "process's own (neither PostgreSQL's nor Garage's)."]
    if r("cloudfilm-postgres+garage") and r("cloudfilm"):
        L += ["" if L else None, "### The cost of the cluster configuration: cloudfilm on PostgreSQL + Garage "
              "against its embedded default (same machine, same dataset)", ""]
        L += cost_table(r("cloudfilm"), r("cloudfilm-postgres+garage"), r("orthanc"), r("orthanc-postgresql"), sizes)
        L += ["", "A ratio above 1 is more for throughput rows (MB/s, inst/s, studies/s) and slower for latency "
              "and memory rows (ms, MB)."]
    if r("cloudfilm-postgres+garage") and r("cloudfilm-postgres+garage-nocache"):
        L += ["" if L else None, "### What the node cache does: cloudfilm PG+Garage with its default cache "
              "(`cache=1GiB`) and without (`cache=0`, every read a GET from Garage)", ""]
        L += variant_table(r("cloudfilm-postgres+garage"), r("cloudfilm-postgres+garage-nocache"),
                           r("orthanc-postgresql"), ("with cache", "without cache"))
    if r("cloudfilm-postgres+garage") and r("cloudfilm-postgres+garage-1node"):
        L += ["" if L else None, "### What replication costs on one machine: cloudfilm PG+Garage on 3 Garage nodes "
              "(replication factor 3, every blob written three times to this disk by these two cores) and on one "
              "(replication factor 1, as each node of a cluster on its own machines does its own share)", ""]
        L += variant_table(r("cloudfilm-postgres+garage"), r("cloudfilm-postgres+garage-1node"),
                           r("orthanc-postgresql"), ("3 nodes", "1 node"))
    if not L:
        L = ["(no pair of configurations to compare: the tables need cloudfilm with orthanc, "
             "cloudfilm-postgres+garage with orthanc-postgresql, or cloudfilm with cloudfilm-postgres+garage)"]
    L += footer(results, limits, ceiling)
    return "\n".join(x for x in L if x is not None) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="small", choices=["tiny", "small", "medium"])
    ap.add_argument("--sizes", default="0,1000,10000,100000", help="QIDO index sizes (studies)")
    ap.add_argument("--phases", default="cstore1,cstore4,cpynet8,stow1,stow4,qido,wado1,wado4,rendered")
    ap.add_argument("--configs", default=DEFAULT_CONFIGS,
                    help=f"comma-separated, of {', '.join(CONFIGS)}; 'all' for every one (default {DEFAULT_CONFIGS})")
    ap.add_argument("--bin", default=os.path.join(HERE, "..", "target", "release", "cloudfilm"))
    ap.add_argument("--data", default="/tmp/bench-data", help="scratch (datasets, stores, limits)")
    ap.add_argument("--results", default=RESULTS, help="where the JSON and markdown go (default bench/results)")
    ap.add_argument("--reuse", action="store_true", help="reuse existing limits/ceiling/Orthanc results of this preset")
    ap.add_argument("--pg-fill-seconds", type=float, default=3600,
                    help="time bound of each index fill step of the PostgreSQL configurations (the harness's default "
                         "900 s would stop Orthanc PG short of 100 000 studies)")
    ap.add_argument("--pg-max-seconds", type=float, default=14400, help="time bound of the whole run of each of them")
    ap.add_argument("--orthanc-pg-connections", type=int, default=None,
                    help="Orthanc PG's IndexConnectionsCount (default: Debian's, /etc/orthanc/postgresql.json)")
    a = ap.parse_args()
    names = list(CONFIGS) if a.configs == "all" else [c.strip() for c in a.configs.split(",") if c.strip()]
    for n in names:
        if n not in CONFIGS:
            raise SystemExit(f"unknown configuration {n!r}: pick from {', '.join(CONFIGS)} or all")
    names = [n for n in CONFIGS if n in names]  # Orthanc first, as always
    results_dir = os.path.abspath(a.results)
    os.makedirs(results_dir, exist_ok=True)
    if a.bin == ap.get_default("bin") and any(CONFIGS[n][0] == "cloudfilm_peer.py" for n in names):
        run(["cargo", "build", "--release", "--bin", "cloudfilm"], cwd=os.path.join(HERE, ".."))
    ds = os.path.join(a.data, f"ds-{a.preset}")
    if not os.path.exists(os.path.join(ds, "manifest.json")):
        run([sys.executable, os.path.join(HERE, "gen_dataset.py"), "--preset", a.preset, "--out", ds])
    limits_out = os.path.join(results_dir, "limits")
    if not (a.reuse and os.path.exists(limits_out + ".json")):
        run([sys.executable, os.path.join(HERE, "limits.py"), "--scratch", os.path.join(a.data, "limits"), "--out", limits_out])
    ceiling_path = os.path.join(results_dir, f"storescu-ceiling-{a.preset}.json")
    if not (a.reuse and os.path.exists(ceiling_path)):
        files = sorted(os.path.join(r, f) for r, _, fs in os.walk(ds) for f in fs if f.endswith(".dcm"))
        ceiling = {str(n): storescu_ceiling(files, n) for n in (1, 4)}
        json.dump(ceiling, open(ceiling_path, "w"), indent=1)
    ceiling = json.load(open(ceiling_path))
    bench_args = ["--qido-index-sizes", a.sizes, "--phases", a.phases]
    pg_bounds = ["--fill-seconds", f"{a.pg_fill_seconds:g}", "--max-seconds", f"{a.pg_max_seconds:g}"]
    default_data = a.data == ap.get_default("data")
    results = {}
    for n in names:
        script, base, peer_args, _ = CONFIGS[n]
        out = os.path.join(results_dir, f"{base}-{a.preset}")
        args = bench_args + (pg_bounds if n in CLUSTER else [])
        if n in BLOB_VARIANTS:
            phases = [p for p in a.phases.split(",") if p in BLOB_PHASES]
            args = ["--qido-index-sizes", "0", "--phases", ",".join(phases)] + pg_bounds
        peer = [sys.executable, os.path.join(HERE, script)]
        if script == "orthanc_peer.py":
            if a.reuse and os.path.exists(out + ".json"):
                results[n] = json.load(open(out + ".json"))
                continue
            if n == "orthanc-postgresql" and a.orthanc_pg_connections:
                peer_args = peer_args + ["--pg-index-connections", str(a.orthanc_pg_connections)]
            work = [] if (n == "orthanc" and default_data) else ["--work", os.path.join(a.data, base)]
            harness_work = [] if (n == "orthanc" and default_data) else ["--work", os.path.join(a.data, base, "work")]
            run(peer + peer_args + work + ["--dataset", ds, "--out", out, "--", *args, *harness_work])
        else:
            run(peer + peer_args + ["--bin", a.bin, "--work", os.path.join(a.data, base), "--dataset", ds,
                                    "--out", out, "--", *args])
        results[n] = json.load(open(out + ".json"))
    table = report(results, json.load(open(limits_out + ".json")), ceiling, [s for s in a.sizes.split(",") if s and s != "0"])
    short = {"orthanc": "orthanc", "cloudfilm": "cloudfilm", "orthanc-postgresql": "orthanc-pg",
             "cloudfilm-postgres+garage": "cloudfilm-pg-garage",
             "cloudfilm-postgres+garage-nocache": "nocache", "cloudfilm-postgres+garage-1node": "1node"}
    suffix = "" if {"orthanc", "cloudfilm"} <= set(names) else "-" + "-".join(short[n] for n in names)
    path = os.path.join(results_dir, f"compare-{a.preset}{suffix}.md")
    open(path, "w").write(table)
    print(table)
    print(f"written to {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
