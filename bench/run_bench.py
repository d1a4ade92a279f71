#!/usr/bin/env python3
"""Target-agnostic DICOM archive benchmark (DIMSE + DICOMweb).

Points at any archive by DICOMweb base URL and DIMSE host/port/AE title; sends
traffic to loopback only; every loop is bounded in count and in time.

Phases (--phases, comma-separated, default all, in this order):
  cstore1   C-STORE with DCMTK storescu, one association, all instances
  cstore4   C-STORE with DCMTK storescu, 4 parallel associations
  cpynet8   C-STORE with pynetdicom, 8 parallel associations, one process each (a client not capped
            like storescu)
  stow1     STOW-RS, 1 client, batches of --stow-batch instances
  stow4     STOW-RS, --stow-clients concurrent clients (default 4)
  qido      QIDO-RS study search by PatientID / PatientName wildcard / StudyDate range,
            p50/p95/p99 over --qido-queries each, at every size in --qido-index-sizes
            (the index is topped up with one-instance metadata studies via STOW-RS)
  wado1     WADO-RS retrieve of whole studies, 1 client (MB/s)
  wado4     WADO-RS retrieve of whole studies, 4 clients
  rendered  WADO-RS /frames/1/rendered as image/jpeg, latency over --rendered-requests
Server resident memory (VmRSS sampled, VmHWM) and CPU time come from /proc/<--pid>.

Each ingest phase sends a disjoint copy of the dataset: UIDs are rewritten by a
same-length byte substitution of the dataset's UID prefix (variant digit), so a
target that skips already-stored instances cannot look faster than it is.
Variant 1 (the files as generated) goes in by cstore1 when it runs, else by the
first ingest phase; wado/rendered read variant 1 back.

Example (Orthanc defaults):
  python3 run_bench.py --dataset /tmp/bench-data/ds-small \\
     --dicomweb http://127.0.0.1:8042/dicom-web --dimse-port 4242 --dimse-aet ORTHANC \\
     --user bench --password bench --pid "$SERVER_PID" --label orthanc \\
     --out results/orthanc-small
"""
import argparse
import concurrent.futures as cf
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import random
import re
import resource
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

import numpy as np
import requests

HERE = os.path.dirname(os.path.abspath(__file__))
@contextlib.contextmanager
def without_gc_pauses():
    """Latency loops run with Python's cycle collector off: its pauses (tens of ms after
    parsing large JSON answers) would show in the client's p99 as if they were the server's."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


ALL_PHASES = ["cstore1", "cstore4", "cpynet8", "stow1", "stow4", "qido", "wado1", "wado4", "rendered"]
INGEST_VARIANT = {"cstore1": 1, "cstore4": 2, "stow1": 3, "stow4": 4, "cpynet8": 5}
FILL_VARIANT = 9


def log(*a):
    print(f"[{time.strftime('%H:%M:%S')}]", *a, file=sys.stderr, flush=True)


def pct(values, p):
    return float(np.percentile(np.asarray(values, dtype=float), p)) if values else None


def lat_summary(ms):
    return {"n": len(ms), "p50_ms": pct(ms, 50), "p95_ms": pct(ms, 95), "p99_ms": pct(ms, 99),
            "mean_ms": float(np.mean(ms)) if ms else None, "max_ms": float(np.max(ms)) if ms else None}


# ------------------------------------------------------------------ server /proc monitor
class ProcMonitor:
    """Samples VmRSS of the server process; attributes peaks and CPU time to phases."""

    def __init__(self, pid, interval=0.2):
        self.pid, self.interval = pid, interval
        self.phase, self.peaks = None, {}
        self._stop = threading.Event()
        self._t = None
        self.clk = os.sysconf("SC_CLK_TCK")

    def _status(self):
        out = {}
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(("VmRSS", "VmHWM", "Threads")):
                    k, v = line.split(":", 1)
                    out[k] = int(v.split()[0])
        return out

    def cpu_s(self):
        if not self.pid:
            return None
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / self.clk  # utime + stime

    def snapshot(self):
        if not self.pid:
            return {}
        s = self._status()
        return {"rss_mb": s.get("VmRSS", 0) / 1024, "hwm_mb": s.get("VmHWM", 0) / 1024,
                "threads": s.get("Threads")}

    def _run(self):
        while not self._stop.is_set():
            try:
                rss = self._status().get("VmRSS", 0) / 1024
            except OSError:
                break
            if self.phase:
                self.peaks[self.phase] = max(self.peaks.get(self.phase, 0.0), rss)
            self._stop.wait(self.interval)

    def start(self):
        if self.pid:
            self._t = threading.Thread(target=self._run, daemon=True)
            self._t.start()

    def stop(self):
        self._stop.set()
        if self._t:
            self._t.join(2)


# ------------------------------------------------------------------ dataset helpers
class Dataset:
    def __init__(self, root):
        self.root = root
        with open(os.path.join(root, "manifest.json")) as f:
            self.m = json.load(f)
        self.prefix = self.m["uid_prefix"].encode()
        assert self.prefix[-6:-5] == b"1", "manifest uid_prefix must be variant 1"
        self.instances = []  # (path, size, study_uid, series_uid, sop_uid, modality)
        for st in self.m["studies"]:
            for se in st["series"]:
                for i in se["instances"]:
                    self.instances.append((os.path.join(root, i["path"]), i["size"], st["StudyInstanceUID"],
                                           se["SeriesInstanceUID"], i["SOPInstanceUID"], se["Modality"]))
        self.total_bytes = sum(i[1] for i in self.instances)

    def vprefix(self, variant):
        return self.prefix[:-6] + str(variant).encode() + self.prefix[-5:]

    def variant_bytes(self, data, variant):
        return data if variant == 1 else data.replace(self.prefix, self.vprefix(variant))

    def variant_uid(self, uid, variant):
        return self.variant_bytes(uid.encode(), variant).decode()

    def materialize(self, variant, dest):
        """Write a UID-rewritten copy of the dataset (untimed), return file list."""
        paths = []
        for k, inst in enumerate(self.instances):
            p = os.path.join(dest, f"{k:06d}.dcm")
            if not os.path.exists(p) or os.path.getsize(p) != inst[1]:
                with open(inst[0], "rb") as f:
                    data = self.variant_bytes(f.read(), variant)
                with open(p, "wb") as f:
                    f.write(data)
            paths.append(p)
        return paths


# ------------------------------------------------------------------ DICOMweb client
class Web:
    def __init__(self, base, auth, timeout):
        self.base = base.rstrip("/")
        self.auth = auth
        self.timeout = timeout
        self._local = threading.local()

    def s(self):
        if not hasattr(self._local, "s"):
            self._local.s = requests.Session()
            self._local.s.auth = self.auth
        return self._local.s

    def stow(self, blobs):
        boundary = "bench-" + uuid.uuid4().hex
        head = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
        parts = []
        for b in blobs:
            parts += [head, b, b"\r\n"]
        parts.append(f"--{boundary}--\r\n".encode())
        body = b"".join(parts)
        r = self.s().post(self.base + "/studies", data=body, timeout=self.timeout, headers={
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json"})
        ok = failed = 0
        if r.status_code in (200, 202):
            try:
                js = r.json()
                ok = len(js.get("00081199", {}).get("Value", []))
                failed = len(js.get("00081198", {}).get("Value", []))
            except ValueError:
                failed = len(blobs)
        else:
            failed = len(blobs)
        return r.status_code, ok, failed

    def qido(self, path, params):
        # "*", "^", "-" and "," go unescaped, as a browser sends them: Orthanc 1.10 + DICOMweb 1.7
        # does not decode %2A / %5E in QIDO values (so requests' default encoding finds nothing)
        # (urllib3 always sends "^" as %5E, hence surname-only wildcards below)
        qs = urllib.parse.urlencode(params, safe="*^-,", quote_via=urllib.parse.quote)
        r = self.s().get(f"{self.base}{path}?{qs}", timeout=self.timeout,
                         headers={"Accept": "application/dicom+json"})
        if r.status_code == 204:
            return r.status_code, []
        return r.status_code, (r.json() if r.status_code == 200 and r.content else [])

    def get_stream(self, path, accept):
        r = self.s().get(self.base + path, headers={"Accept": accept}, stream=True, timeout=self.timeout)
        return r


# ------------------------------------------------------------------ phases
def find_dcmtk_storescu(explicit):
    cands = [explicit] if explicit else [shutil.which("storescu", path="/usr/bin:/bin"), shutil.which("storescu")]
    for c in cands:
        if not c:
            continue
        try:
            out = subprocess.run([c, "--version"], capture_output=True, text=True, timeout=10).stdout
        except OSError:
            continue
        if "dcmtk" in out.lower():
            return c
    raise SystemExit("DCMTK storescu not found (apt-get install dcmtk); pynetdicom's storescu is not it")


def phase_cstore(a, ds, mon, web, nassoc, variant, work):
    storescu = find_dcmtk_storescu(a.storescu)
    if variant == 1:
        files = [i[0] for i in ds.instances]
    else:
        d = os.path.join(work, f"variant{variant}")
        os.makedirs(d, exist_ok=True)
        log(f"materializing variant {variant} in {d} (untimed)")
        files = ds.materialize(variant, d)
    chunks = [files[k::nassoc] for k in range(nassoc)]
    listdir = os.path.join(work, f"lists-v{variant}-{nassoc}")
    os.makedirs(listdir, exist_ok=True)
    procs = []
    cpu0, t0 = mon.cpu_s(), time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    for k, ch in enumerate(chunks):
        cmd = [storescu, "-v", "-aet", a.calling_aet, "-aec", a.dimse_aet, "-to", "60", "-ta", "60",
               "-td", "120", a.dimse_host, str(a.dimse_port)] + ch
        out = open(os.path.join(listdir, f"storescu-{k}.log"), "w")
        procs.append((subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT), out))
    deadline = t0 + a.phase_seconds
    timed_out = False
    for p, out in procs:
        try:
            p.wait(timeout=max(1, deadline - time.perf_counter()))
        except subprocess.TimeoutExpired:
            timed_out = True
            p.terminate()
            p.wait(10)
        out.close()
    el = time.perf_counter() - t0
    cpu1 = mon.cpu_s()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    ok = failed = 0
    rcs = []
    for k, (p, _) in enumerate(procs):
        rcs.append(p.returncode)
        txt = open(os.path.join(listdir, f"storescu-{k}.log"), errors="replace").read()
        ok += len(re.findall(r"Received Store Response \(Success\)", txt))
        failed += len(re.findall(r"Store Failed|Received Store Response \((?!Success)", txt))
    # storescu reports successes, not which files: bytes are prorated (exact when all succeed)
    done_bytes = int(ds.total_bytes * ok / max(1, len(files)))
    return {"associations": nassoc, "instances_ok": ok, "instances_failed": failed,
            "instances_total": len(files), "seconds": el, "timed_out": timed_out,
            "instances_per_s": ok / el, "MB_per_s": done_bytes / 1e6 / el, "MB": done_bytes / 1e6,
            "storescu_rc": rcs, "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None else None,
            "client_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
            "variant": variant}


def _pynetdicom_association(a, files, barrier, deadline, out):
    """One association in its own process: reads its data sets, waits for the start, sends."""
    import pydicom
    from pynetdicom import AE
    datasets = [pydicom.dcmread(f) for f in files]
    pairs = sorted({(str(x.SOPClassUID), str(x.file_meta.TransferSyntaxUID)) for x in datasets})[:128]
    ae = AE(ae_title=a.calling_aet)
    ae.acse_timeout, ae.dimse_timeout, ae.network_timeout = 60, 120, 120
    for cls, ts in pairs:
        ae.add_requested_context(cls, ts)
    barrier.wait()
    ok, error = 0, None
    try:
        assoc = ae.associate(a.dimse_host, a.dimse_port, ae_title=a.dimse_aet)
        if assoc.is_established:
            for x in datasets:
                if time.monotonic() > deadline:
                    break
                status = assoc.send_c_store(x)
                if status and status.Status == 0:
                    ok += 1
            assoc.release()
        else:
            error = "association not established"
    except Exception as e:  # reported, not raised: the other associations go on
        error = repr(e)
    out.put((ok, error))


def phase_cstore_pynetdicom(a, ds, mon, nassoc, variant, work):
    """C-STORE from pynetdicom, `nassoc` associations, each in its own process (threads of one
    Python process share one interpreter lock, and pynetdicom's own threads poll: the client
    would be the bottleneck); data sets are read before the clock starts."""
    import multiprocessing as mp
    d = os.path.join(work, f"variant{variant}")
    os.makedirs(d, exist_ok=True)
    files = ds.materialize(variant, d) if variant != 1 else [i[0] for i in ds.instances]
    ctx = mp.get_context("fork")
    barrier, out = ctx.Barrier(nassoc + 1), ctx.Queue()
    deadline = time.monotonic() + a.phase_seconds + 60  # reading the data sets comes first
    procs = [ctx.Process(target=_pynetdicom_association, args=(a, files[k::nassoc], barrier, deadline, out))
             for k in range(nassoc)]
    for p in procs:
        p.start()
    barrier.wait(timeout=120)
    children0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu0, t0 = mon.cpu_s(), time.perf_counter()
    results = [out.get(timeout=a.phase_seconds + 300) for _ in procs]
    el = time.perf_counter() - t0
    cpu1 = mon.cpu_s()
    for p in procs:
        p.join(timeout=30)
    children1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    # The client processes' CPU (reading the data sets before the start included).
    client_cpu = (children1.ru_utime + children1.ru_stime) - (children0.ru_utime + children0.ru_stime)
    ok = sum(r[0] for r in results)
    errors = [r[1] for r in results if r[1]]
    done_bytes = int(ds.total_bytes * ok / max(1, len(files)))
    return {"associations": nassoc, "processes": nassoc, "instances_ok": ok, "instances_failed": len(files) - ok,
            "instances_total": len(files), "seconds": el, "instances_per_s": ok / el,
            "MB_per_s": done_bytes / 1e6 / el, "MB": done_bytes / 1e6, "errors": errors,
            "client_cpu_s": client_cpu, "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None else None,
            "variant": variant}


def phase_stow(a, ds, mon, web, clients, variant):
    insts = ds.instances
    batches = [insts[k:k + a.stow_batch] for k in range(0, len(insts), a.stow_batch)]
    lock = threading.Lock()
    agg = {"ok": 0, "failed": 0, "bytes": 0, "requests": 0, "status": {}}
    lat = []
    deadline = time.perf_counter() + a.phase_seconds
    it = iter(batches)

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                b = next(it, None)
            if b is None:
                return
            blobs = []
            for inst in b:
                with open(inst[0], "rb") as f:
                    blobs.append(ds.variant_bytes(f.read(), variant))
            nbytes = sum(len(x) for x in blobs)
            t = time.perf_counter()
            st, ok, failed = web.stow(blobs)
            d = time.perf_counter() - t
            with lock:
                agg["ok"] += ok
                agg["failed"] += failed
                agg["bytes"] += nbytes if ok == len(blobs) else int(nbytes * ok / len(blobs))
                agg["requests"] += 1
                agg["status"][str(st)] = agg["status"].get(str(st), 0) + 1
                lat.append(d * 1000)

    cpu0, t0 = mon.cpu_s(), time.perf_counter()
    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    with cf.ThreadPoolExecutor(clients) as ex:
        for f in [ex.submit(worker) for _ in range(clients)]:
            f.result()
    el = time.perf_counter() - t0
    cpu1 = mon.cpu_s()
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    return {"clients": clients, "batch": a.stow_batch, "instances_ok": agg["ok"], "instances_failed": agg["failed"],
            "instances_total": len(insts), "requests": agg["requests"], "http_status": agg["status"],
            "seconds": el, "timed_out": agg["ok"] + agg["failed"] < len(insts),
            "instances_per_s": agg["ok"] / el, "MB_per_s": agg["bytes"] / 1e6 / el, "MB": agg["bytes"] / 1e6,
            "request_latency": lat_summary(lat),
            "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None else None,
            "client_cpu_s": (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime), "variant": variant}


def verify_ingest(a, ds, web, variant):
    """QIDO each study of the variant; compare NumberOfStudyRelatedInstances with the manifest."""
    expected = {}
    for i in ds.instances:
        expected[i[2]] = expected.get(i[2], 0) + 1
    good = seen = 0
    for uid, n in expected.items():
        try:
            st, js = web.qido("/studies", {"StudyInstanceUID": ds.variant_uid(uid, variant),
                                           "includefield": "00201208"})
            got = int(js[0]["00201208"]["Value"][0]) if js else 0
        except Exception:  # noqa: BLE001 - a verification miss is reported, not fatal
            got = 0
        seen += got
        good += got == n
    return {"studies_expected": len(expected), "studies_complete": good,
            "instances_expected": sum(expected.values()), "instances_found": seen}


def make_fill_instance(seed, k, rng):
    """Tiny one-instance study (8x8 CT) for growing the index; deterministic in (seed, k)."""
    from io import BytesIO
    from pydicom.dataset import Dataset as PDS, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian
    sys.path.insert(0, HERE)
    import gen_dataset as g
    pfx = g.uid_prefix(seed, FILL_VARIANT)
    sur, given = g.SURNAMES[rng.randrange(len(g.SURNAMES))], g.GIVEN[rng.randrange(len(g.GIVEN))]
    pnum = k // 2  # about two studies per patient
    prng = random.Random(seed * 1000003 + pnum)
    birth = (dt.date(1940, 1, 1) + dt.timedelta(days=prng.randrange(0, 75 * 365))).strftime("%Y%m%d")
    sex = prng.choice("MF")
    sdate = (dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 7 * 365))).strftime("%Y%m%d")
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = f"{pfx}4.{k}.1.1"
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    d = PDS()
    d.file_meta = meta
    d.SpecificCharacterSet = "ISO_IR 192"
    d.SOPClassUID, d.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    d.StudyDate = d.SeriesDate = sdate
    d.StudyTime = "093000"
    d.AccessionNumber = f"F{k:09d}"
    d.Modality = "CT"
    d.InstitutionName = g.INSTITUTIONS[k % len(g.INSTITUTIONS)]
    d.Manufacturer = "SYNTHETIC"
    d.StudyDescription = "FILL STUDY"
    d.ReferringPhysicianName = g.PHYSICIANS[k % len(g.PHYSICIANS)]
    prng_name = random.Random(seed * 7919 + pnum)
    sur = g.SURNAMES[prng_name.randrange(len(g.SURNAMES))]
    given = g.GIVEN[prng_name.randrange(len(g.GIVEN))]
    d.PatientName = f"{sur[0]}^{given[0]}={sur[1]}^{given[1]}"
    d.PatientID = f"9{seed % 10000:04d}{pnum:07d}"
    d.PatientBirthDate, d.PatientSex = birth, sex
    d.OtherPatientIDs = g.resident_id(g.REGIONS[pnum % len(g.REGIONS)], birth, pnum % 1000, sex)
    d.StudyInstanceUID, d.SeriesInstanceUID = f"{pfx}1.{k}", f"{pfx}2.{k}.1"
    d.StudyID, d.SeriesNumber, d.InstanceNumber = str(k % 99999), 1, 1
    d.SamplesPerPixel, d.PhotometricInterpretation = 1, "MONOCHROME2"
    d.Rows = d.Columns = 8
    d.BitsAllocated, d.BitsStored, d.HighBit, d.PixelRepresentation = 16, 12, 11, 0
    d.PixelData = bytes(128)
    buf = BytesIO()
    d.save_as(buf, enforce_file_format=True)
    return buf.getvalue(), d.PatientID, str(d.PatientName).split("=")[0]


def fill_index(a, ds, web, start, stop):
    if stop <= start:
        return {"added": 0}
    seed = ds.m["seed"]
    deadline = time.perf_counter() + a.fill_seconds
    lock = threading.Lock()
    nxt = [start]
    res = {"ok": 0, "failed": 0}

    def worker():
        rng = random.Random()
        while time.perf_counter() < deadline:
            with lock:
                k0 = nxt[0]
                if k0 >= stop:
                    return
                nxt[0] = min(stop, k0 + a.fill_batch)
            blobs = []
            for k in range(k0, min(stop, k0 + a.fill_batch)):
                rng.seed(seed * 31 + k)
                blobs.append(make_fill_instance(seed, k, rng)[0])
            # A server may close a kept-alive connection as it is reused: filling is
            # idempotent, so a request that broke is sent again (three tries).
            for attempt in range(3):
                try:
                    _, ok, failed = web.stow(blobs)
                    break
                except requests.exceptions.ConnectionError:
                    if attempt == 2:
                        raise
                    time.sleep(1)
            with lock:
                res["ok"] += ok
                res["failed"] += failed

    t0 = time.perf_counter()
    with cf.ThreadPoolExecutor(a.stow_clients) as ex:
        for f in [ex.submit(worker) for _ in range(a.stow_clients)]:
            f.result()
    el = time.perf_counter() - t0
    return {"added": res["ok"], "failed": res["failed"], "seconds": el, "studies_per_s": res["ok"] / el}


def qido_suite(a, ds, web, fill_n, rng):
    seed = ds.m["seed"]
    pids = sorted({s["PatientID"] for s in ds.m["studies"]})
    names = sorted({s["PatientName"].split("=")[0] for s in ds.m["studies"]})
    frng = random.Random(0)
    for k in range(0, fill_n, max(1, fill_n // 300) if fill_n else 1):
        frng.seed(seed * 31 + k)
        _, pid, name = make_fill_instance(seed, k, frng)
        pids.append(pid)
        names.append(name)
    out = {}
    kinds = {
        "by_patient_id": lambda: {"PatientID": rng.choice(pids)},
        # family-name prefix, e.g. "WANG*": "WANG^Z*" would be more selective, but Python's HTTP
        # stack sends "^" as %5E, which Orthanc 1.10 + DICOMweb 1.7 matches against nothing
        "by_name_wildcard": lambda: {"PatientName": rng.choice(names).split("^")[0] + "*"},
        "by_date_range": lambda: (lambda d0: {"StudyDate": f"{d0:%Y%m%d}-{d0 + dt.timedelta(days=30):%Y%m%d}"})(
            dt.date(2019, 1, 1) + dt.timedelta(days=rng.randrange(0, 7 * 365 - 30))),
    }
    for kind, mk in kinds.items():
        with without_gc_pauses():
            out[kind] = qido_kind(a, web, mk)
    return out


def qido_kind(a, web, mk):
    """Latencies of one kind of study search: --qido-queries after --qido-warmup."""
    lat, hits, errors, results = [], 0, 0, 0
    deadline = time.perf_counter() + a.qido_seconds
    for q in range(a.qido_queries + a.qido_warmup):
        if time.perf_counter() > deadline:
            break
        params = mk()
        params["limit"] = str(a.qido_limit)
        t = time.perf_counter()
        try:
            st, js = web.qido("/studies", params)
        except requests.RequestException:
            st, js = -1, []
        d = (time.perf_counter() - t) * 1000
        if q < a.qido_warmup:
            continue
        lat.append(d)
        if st not in (200, 204):
            errors += 1
        hits += bool(js)
        results += len(js)
    s = lat_summary(lat)
    s.update(errors=errors, hit_rate=hits / max(1, len(lat)), mean_results=results / max(1, len(lat)))
    return s


def phase_wado(a, ds, mon, web, clients):
    studies = list(dict.fromkeys(i[2] for i in ds.instances))
    per_study = {}
    for i in ds.instances:
        per_study[i[2]] = per_study.get(i[2], 0) + 1
    lock = threading.Lock()
    it = iter(studies)
    agg = {"bytes": 0, "studies": 0, "parts": 0, "errors": 0, "parts_expected": 0}
    lat = []
    deadline = time.perf_counter() + a.phase_seconds

    def worker():
        while time.perf_counter() < deadline:
            with lock:
                uid = next(it, None)
            if uid is None:
                return
            t = time.perf_counter()
            nbytes = parts = 0
            try:
                r = web.get_stream(f"/studies/{uid}", a.wado_accept)
                ct = r.headers.get("Content-Type", "")
                m = re.search(r'boundary="?([^";]+)"?', ct)
                bnd = ("--" + m.group(1)).encode() if m else None
                tail = b""
                for chunk in r.iter_content(1 << 20):
                    nbytes += len(chunk)
                    if bnd:
                        buf = tail + chunk
                        parts += buf.count(bnd)
                        tail = buf[-(len(bnd) - 1):]
                ok = r.status_code == 200
                parts = max(0, parts - 1)  # closing delimiter
            except requests.RequestException:
                ok = False
            d = time.perf_counter() - t
            with lock:
                agg["bytes"] += nbytes
                agg["studies"] += 1
                agg["parts"] += parts
                agg["parts_expected"] += per_study[uid]
                agg["errors"] += not ok
                lat.append(d * 1000)

    cpu0, t0 = mon.cpu_s(), time.perf_counter()
    with cf.ThreadPoolExecutor(clients) as ex:
        for f in [ex.submit(worker) for _ in range(clients)]:
            f.result()
    el = time.perf_counter() - t0
    cpu1 = mon.cpu_s()
    return {"clients": clients, "studies": agg["studies"], "studies_total": len(studies),
            "instances_received": agg["parts"], "instances_expected": agg["parts_expected"],
            "errors": agg["errors"], "MB": agg["bytes"] / 1e6, "seconds": el,
            "MB_per_s": agg["bytes"] / 1e6 / el, "instances_per_s": agg["parts"] / el,
            "study_latency": lat_summary(lat), "server_cpu_s": (cpu1 - cpu0) if cpu0 is not None else None}


def phase_rendered(a, ds, mon, web, rng):
    by_mod = {}
    for i in ds.instances:
        by_mod.setdefault(i[5], []).append(i)
    mods = sorted(by_mod)
    lat, per_mod, errors, nbytes = [], {}, 0, 0
    sample_err = None
    deadline = time.perf_counter() + a.phase_seconds
    cpu0, t0 = mon.cpu_s(), time.perf_counter()
    for q in range(a.rendered_requests):
        if time.perf_counter() > deadline:
            break
        mod = mods[q % len(mods)]
        inst = rng.choice(by_mod[mod])
        path = f"/studies/{inst[2]}/series/{inst[3]}/instances/{inst[4]}/frames/1/rendered"
        t = time.perf_counter()
        try:
            r = web.s().get(web.base + path, headers={"Accept": "image/jpeg"}, timeout=web.timeout)
            body = r.content
            ok = r.status_code == 200 and body[:2] == b"\xff\xd8"
            if not ok and sample_err is None:
                sample_err = f"{r.status_code} {r.headers.get('Content-Type')} {body[:120]!r}"
        except requests.RequestException as e:
            ok, body = False, b""
            sample_err = sample_err or repr(e)[:200]
        d = (time.perf_counter() - t) * 1000
        if ok:
            lat.append(d)
            per_mod.setdefault(mod, []).append(d)
            nbytes += len(body)
        else:
            errors += 1
        if errors >= 20 and not lat:
            break  # unsupported: stop early
    el = time.perf_counter() - t0
    cpu1 = mon.cpu_s()
    out = lat_summary(lat)
    out.update(errors=errors, seconds=el, mean_jpeg_kb=nbytes / 1024 / max(1, len(lat)),
               by_modality={m: lat_summary(v) for m, v in per_mod.items()}, first_error=sample_err,
               server_cpu_s=(cpu1 - cpu0) if cpu0 is not None else None)
    return out


# ------------------------------------------------------------------ report
def fmt(v, nd=1):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{nd}f}"
    return str(v)


def markdown(res):
    L = [f"### {res['label']} — {res['date']}", "",
         f"Dataset: seed {res['dataset']['seed']}, {res['dataset']['patients']} patients, scale "
         f"{res['dataset']['scale']}, {res['dataset']['studies']} studies, {res['dataset']['instances']} "
         f"instances, {res['dataset']['MB']:.0f} MB. Target: {res['target'].get('version') or '-'}.", "",
         "| row | result | detail |", "|---|---|---|"]
    ph = res["phases"]
    for name, title in [("cstore1", "C-STORE storescu, 1 association"),
                        ("cstore4", "C-STORE storescu, 4 associations"),
                        ("cpynet8", "C-STORE pynetdicom, 8 associations"),
                        ("stow1", "STOW-RS, 1 client"), ("stow4", "STOW-RS, 4 clients")]:
        if name in ph and "error" not in ph[name]:
            p = ph[name]
            L.append(f"| {title} | {fmt(p['instances_per_s'])} inst/s, {fmt(p['MB_per_s'])} MB/s | "
                     f"{p['instances_ok']}/{p['instances_total']} ok, {fmt(p['seconds'])} s, server CPU "
                     f"{fmt(p.get('server_cpu_s'))} s, peak RSS {fmt(res['rss_peak_mb'].get(name), 0)} MB |")
    if "qido" in ph and "error" not in ph["qido"]:
        for size, q in ph["qido"].items():
            for kind, s in q["queries"].items():
                L.append(f"| QIDO-RS {kind.replace('_', ' ')} @ {q['studies_indexed']} studies | p50 "
                         f"{fmt(s['p50_ms'])} / p95 {fmt(s['p95_ms'])} / p99 {fmt(s['p99_ms'])} ms | "
                         f"n={s['n']}, hit rate {fmt(s['hit_rate'], 2)}, mean results {fmt(s['mean_results'])}, "
                         f"errors {s['errors']} |")
    for name, title in [("wado1", "WADO-RS whole study, 1 client"), ("wado4", "WADO-RS whole study, 4 clients")]:
        if name in ph and "error" not in ph[name]:
            p = ph[name]
            L.append(f"| {title} | {fmt(p['MB_per_s'])} MB/s, {fmt(p['instances_per_s'])} inst/s | "
                     f"{p['studies']} studies, {p['instances_received']}/{p['instances_expected']} instances, "
                     f"study p50 {fmt(p['study_latency']['p50_ms'], 0)} ms, errors {p['errors']} |")
    if "rendered" in ph and "error" not in ph["rendered"]:
        p = ph["rendered"]
        bym = ", ".join(f"{m} p50 {fmt(s['p50_ms'])}" for m, s in sorted(p["by_modality"].items()))
        L.append(f"| WADO-RS rendered frame (JPEG) | p50 {fmt(p['p50_ms'])} / p95 {fmt(p['p95_ms'])} / p99 "
                 f"{fmt(p['p99_ms'])} ms | n={p['n']}, errors {p['errors']}; {bym} ms |")
    if res.get("server_final"):
        if res.get("storage_bytes"):
            L.append(f"| storage on disk | {res['storage_bytes'] / 1e6:.0f} MB | for everything ingested in this run |")
        L.append(f"| server memory | peak VmHWM {fmt(res['server_final'].get('hwm_mb'), 0)} MB | RSS at end "
                 f"{fmt(res['server_final'].get('rss_mb'), 0)} MB, at start {fmt(res['server_start'].get('rss_mb'), 0)} MB |")
    return "\n".join(L) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", required=True, help="directory written by gen_dataset.py")
    ap.add_argument("--dicomweb", required=True, help="DICOMweb base URL, e.g. http://127.0.0.1:8042/dicom-web")
    ap.add_argument("--dimse-host", default="127.0.0.1")
    ap.add_argument("--dimse-port", type=int, default=4242)
    ap.add_argument("--dimse-aet", default="ORTHANC", help="called AE title")
    ap.add_argument("--calling-aet", default="BENCHSCU")
    ap.add_argument("--user"), ap.add_argument("--password")
    ap.add_argument("--pid", type=int, help="server pid for RSS/CPU from /proc")
    ap.add_argument("--label", default="target")
    ap.add_argument("--target-version", default="", help="free text recorded in the report")
    ap.add_argument("--phases", default=",".join(ALL_PHASES))
    ap.add_argument("--phase-seconds", type=float, default=300, help="time bound of each phase")
    ap.add_argument("--stow-batch", type=int, default=50)
    ap.add_argument("--stow-clients", type=int, default=4)
    ap.add_argument("--qido-queries", type=int, default=200)
    ap.add_argument("--qido-warmup", type=int, default=10)
    ap.add_argument("--qido-limit", type=int, default=100)
    ap.add_argument("--qido-seconds", type=float, default=120, help="time bound per query kind")
    ap.add_argument("--qido-index-sizes", default="0",
                    help="comma list of study counts to QIDO at; 0 = as ingested; larger = top up with fill studies")
    ap.add_argument("--fill-batch", type=int, default=200)
    ap.add_argument("--fill-seconds", type=float, default=900)
    ap.add_argument("--wado-accept", default='multipart/related; type="application/dicom"')
    ap.add_argument("--rendered-requests", type=int, default=240)
    ap.add_argument("--storescu", help="path of DCMTK storescu (default: the one in /usr/bin)")
    ap.add_argument("--work", default="/tmp/bench-data/work", help="scratch for UID-variant copies and logs")
    ap.add_argument("--timeout", type=float, default=300, help="per-request timeout, s")
    ap.add_argument("--max-seconds", type=float, default=3600, help="bound of the whole run")
    ap.add_argument("--seed", type=int, default=1, help="seed of query/instance choices")
    ap.add_argument("--storage-dir", help="optional: report the target's storage size (du) at the end")
    ap.add_argument("--out", help="write OUT.json and OUT.md")
    a = ap.parse_args()

    for host in [urllib.parse.urlparse(a.dicomweb).hostname, a.dimse_host]:
        if not (host in ("localhost", "::1") or host.startswith("127.")):
            raise SystemExit(f"refusing non-loopback target {host}")
    ds = Dataset(a.dataset)
    auth = (a.user, a.password) if a.user else None
    web = Web(a.dicomweb, auth, a.timeout)
    mon = ProcMonitor(a.pid)
    os.makedirs(a.work, exist_ok=True)
    phases = [p for p in a.phases.split(",") if p]
    for p in phases:
        if p not in ALL_PHASES:
            raise SystemExit(f"unknown phase {p}")
    res = {"label": a.label, "date": dt.datetime.now().isoformat(timespec="seconds"),
           "target": {"dicomweb": a.dicomweb, "dimse": f"{a.dimse_aet}@{a.dimse_host}:{a.dimse_port}",
                      "version": a.target_version, "pid": a.pid},
           "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                       "mem_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
           "dataset": {"seed": ds.m["seed"], "patients": ds.m["patients"], "scale": ds.m["scale"],
                       "studies": ds.m["studies_count"], "instances": len(ds.instances), "MB": ds.total_bytes / 1e6},
           # no password, and no absolute paths of this machine in a report that may be committed
           "params": {k: (os.path.basename(v.rstrip("/")) if isinstance(v, str) and v.startswith("/") else v)
                      for k, v in vars(a).items() if k != "password"}, "phases": {},
           "server_start": mon.snapshot()}
    mon.start()
    rng = random.Random(a.seed)
    t_run = time.perf_counter()
    ingested_variants = []
    ingest_phases = [p for p in phases if p in INGEST_VARIANT]
    # variant 1 (original) goes with the first ingest phase, so wado/rendered find it
    variants = {p: v for p, v in INGEST_VARIANT.items()}
    if ingest_phases and "cstore1" not in ingest_phases:
        variants[ingest_phases[0]], variants["cstore1"] = 1, variants[ingest_phases[0]]
    for p in phases:
        if time.perf_counter() - t_run > a.max_seconds:
            log(f"run time bound reached, skipping {p}")
            res["phases"][p] = {"skipped": "max-seconds"}
            continue
        log(f"phase {p}")
        mon.phase = p
        try:
            if p in ("cstore1", "cstore4"):
                r = phase_cstore(a, ds, mon, web, 1 if p == "cstore1" else 4, variants[p], a.work)
            elif p == "cpynet8":
                r = phase_cstore_pynetdicom(a, ds, mon, 8, variants[p], a.work)
            elif p in ("stow1", "stow4"):
                r = phase_stow(a, ds, mon, web, 1 if p == "stow1" else a.stow_clients, variants[p])
            elif p == "qido":
                r = {}
                base_studies = ds.m["studies_count"] * len(ingested_variants)
                filled = 0
                for size in [int(x) for x in a.qido_index_sizes.split(",") if x.strip()]:
                    fill_to = max(0, size - base_studies)
                    fres = fill_index(a, ds, web, filled, fill_to) if fill_to > filled else {"added": 0}
                    filled = max(filled, filled + fres.get("added", 0))
                    log(f"  qido at {base_studies + filled} studies (fill {fres})")
                    r[str(size)] = {"studies_indexed": base_studies + filled, "fill": fres,
                                    "queries": qido_suite(a, ds, web, filled, rng)}
            elif p in ("wado1", "wado4"):
                r = phase_wado(a, ds, mon, web, 1 if p == "wado1" else 4)
            elif p == "rendered":
                r = phase_rendered(a, ds, mon, web, rng)
        except Exception as e:  # noqa: BLE001 - one broken phase must not lose the others
            log(f"phase {p} failed: {e!r}")
            r = {"error": repr(e)[:500]}
        if p in INGEST_VARIANT and "error" not in r:
            ingested_variants.append(variants[p])
            r["verify"] = verify_ingest(a, ds, web, variants[p])
        res["phases"][p] = r
        log(f"  {p}: " + json.dumps({k: v for k, v in r.items() if not isinstance(v, dict)})[:400])
    mon.phase = None
    mon.stop()
    res["rss_peak_mb"] = mon.peaks
    res["server_final"] = mon.snapshot()
    res["seconds_total"] = time.perf_counter() - t_run
    if a.storage_dir:
        du = subprocess.run(["du", "-sb", a.storage_dir], capture_output=True, text=True).stdout.split()
        res["storage_bytes"] = int(du[0]) if du else None
    md = markdown(res)
    print(md)
    if a.out:
        os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
        with open(a.out + ".json", "w") as f:
            json.dump(res, f, indent=1, ensure_ascii=False)
        with open(a.out + ".md", "w") as f:
            f.write(md)


if __name__ == "__main__":
    main()
