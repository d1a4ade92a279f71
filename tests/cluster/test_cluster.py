"""Three cloudfilm nodes on one PostgreSQL index and a 3-node Garage store behave as one archive.

Four clients send STOW-RS and C-STORE round-robin to every node; in the middle the node that
holds the audit sequencer is killed with SIGKILL and one Garage node is stopped, and the clients
retry on the others. Then every acknowledged instance comes back byte-identical from every
surviving node, no index row is without its blob, and `audit verify` passes after the sequencer
moved. Before that, single-use rules are shown exact across nodes through the real HTTP API:
wrong one-time codes, share passwords and download codes spread over the three nodes.
"""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
from conftest import HTTP_TIMEOUT, Cloudfilm, session_for  # noqa: E402
from garage import GarageCluster  # noqa: E402
from test_dimse import ARCHIVE_AE, CT, make_instance, pynet_ae  # noqa: E402
from test_share_download import (  # noqa: E402
    ACCESSION,
    SAMPLES,
    SHARE_PASSWORD,
    Outbox,
    PatientClient,
    build_study,
    download,
    error_code,
    unlock,
    wrong_code,
)

POSTGRES_SERVER = os.environ.get("CLOUDFILM_TEST_POSTGRES", "postgres://127.0.0.1:5432/postgres")
NODES = 3
CLIENTS = 4
PER_CLIENT = 24  # instances each client sends
KILL_AFTER = 30  # acknowledged instances before the sequencer's node is killed
SCU = "CLUSTER_SCU"
RETRIES = 6  # nodes a client tries for one instance before giving up


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    root = tmp_path_factory.mktemp("cluster")
    garage = GarageCluster(nodes=3)
    garage.start()
    name = f"cloudfilm_cluster_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"CREATE DATABASE {name}"], check=True, timeout=60)
    outbox = Outbox(root / "sms-outbox.jsonl")
    storage = {
        "CLOUDFILM_DATABASE": POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name,
        "CLOUDFILM_BLOBS": f"s3://{garage.bucket}?endpoint={garage.endpoint}&region={garage.region}",
        "AWS_ACCESS_KEY_ID": garage.access_key_id,
        "AWS_SECRET_ACCESS_KEY": garage.secret_access_key,
        "CLOUDFILM_KEYS": str(root / "keyring.json"),
        "CLOUDFILM_PATIENTS__SMS": f"file:{outbox.path}",
        "CLOUDFILM_PATIENTS__OTP__RESEND_SECS": "0",
    }
    nodes = [Cloudfilm(root / f"node{i}" / "data", env={}) for i in range(NODES)]
    try:
        for node in nodes:
            node.data_dir.parent.mkdir(parents=True, exist_ok=True)
            conftest.use_storage(node.data_dir, storage)
        nodes[0].create_org("H1", "Hospital One")
        key = nodes[0].create_key("H1")
        nodes[0].add_ae("H1", SCU)
        for node in nodes:
            node.start()
        yield garage, nodes, key, outbox
    finally:
        for node in nodes:
            node.stop()
        garage.stop()
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


def alive(nodes: list[Cloudfilm]) -> list[Cloudfilm]:
    return [n for n in nodes if n.proc is not None and n.proc.poll() is None]


def sequencer(nodes: list[Cloudfilm]) -> Cloudfilm:
    """The node whose log says it holds the audit sequencer."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for node in alive(nodes):
            if "this node is the audit sequencer" in node.stderr_tail(200_000):
                return node
        time.sleep(0.2)
    raise AssertionError("no node took the audit sequencer")


def test_health_names_both_stores(cluster):
    _, nodes, _, _ = cluster
    for node in nodes:
        r = requests.get(node.url + "/healthz", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.json() == {"database": "ok", "blobs": "ok"}


def test_wrong_codes_spread_over_the_nodes_exhaust_the_code(cluster):
    _, nodes, _, outbox = cluster
    phone = "13700000001"
    http = session_for(None)
    mark = outbox.mark()
    r = http.post(nodes[0].url + "/api/v1/auth/otp", json={"phone": phone}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 202, r.text
    right = _code_to(outbox, mark, phone)
    for n in range(5):
        node = nodes[n % NODES]
        r = http.post(node.url + "/api/v1/auth/login", json={"phone": phone, "code": wrong_code(right, n)},
                      timeout=HTTP_TIMEOUT)
        assert r.status_code == 401, (n, r.status_code, r.text)
    r = http.post(nodes[2].url + "/api/v1/auth/login", json={"phone": phone, "code": right}, timeout=HTTP_TIMEOUT)
    assert r.status_code == 401 and error_code(r) == "code_exhausted", (r.status_code, r.text)


def _code_to(outbox: Outbox, mark: int, phone: str) -> str:
    import re

    text = outbox.wait_new(mark, to=phone)["text"]
    return re.search(r"(?<!\d)\d{6}(?!\d)", text).group(0)


@pytest.fixture(scope="module")
def patient(cluster):
    """The test patient logged in at node 0, matched to a study stored through node 1."""
    _, nodes, key, outbox = cluster
    study = build_study(SAMPLES[:3], ACCESSION)
    r = nodes[1].stow(key, [i.data for i in study.instances])
    assert r.status_code == 200, r.text[:2000]
    client = PatientClient(nodes[0], outbox)
    client.login()
    member = client.add_self()
    exams = client.match(member, ACCESSION)
    return client, exams[0]


def test_a_session_made_at_one_node_works_at_every_node(cluster, patient):
    _, nodes, _, _ = cluster
    client, exam = patient
    for node in nodes:
        r = client.http.get(node.url + f"/api/v1/exams/{exam}", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, (node.url, r.status_code, r.text)


def test_ten_wrong_share_passwords_spread_over_the_nodes_lock_the_share(cluster, patient):
    _, nodes, _, _ = cluster
    client, exam = patient
    share = client.create_share(exam, deidentified=False)
    recipient = session_for(None)
    for n in range(9):
        r = unlock(nodes[n % NODES], share["token"], f"wrong-{n}-password", recipient)
        assert r.status_code == 401 and error_code(r) == "wrong_password", (n, r.status_code, r.text)
    r = unlock(nodes[9 % NODES], share["token"], "wrong-9-password", recipient)
    assert error_code(r) == "share_locked", ("the tenth wrong password locks", r.status_code, r.text)
    r = unlock(nodes[1], share["token"], SHARE_PASSWORD, recipient)
    assert error_code(r) == "share_locked", ("locked even for the right password", r.status_code, r.text)


def test_the_eleventh_wrong_download_code_at_any_node_ends_the_link(cluster, patient):
    _, nodes, _, _ = cluster
    client, exam = patient
    token, code = client.create_download(exam)
    for n in range(10):
        r = download(nodes[n % NODES], token, wrong_code(code, n))
        assert r.status_code == 401 and error_code(r) == "wrong_code", (n, r.status_code, r.text)
    r = download(nodes[(10) % NODES], token, wrong_code(code, 10))
    assert r.status_code == 410, (r.status_code, r.text)
    r = download(nodes[2], token, code)
    assert r.status_code == 410, "the right code no longer opens the link"


class Ingest:
    """The clients' shared record of what was acknowledged, and the faults' trigger."""

    def __init__(self):
        self.lock = threading.Lock()
        self.acknowledged: dict[str, tuple[str, str, bytes]] = {}  # sop -> (study, series, bytes)
        self.refusals = 0
        self.faulted = threading.Event()

    def ack(self, sop: str, study: str, series: str, data: bytes) -> int:
        with self.lock:
            self.acknowledged[sop] = (study, series, data)
            return len(self.acknowledged)


def dataset_of(part10: bytes) -> bytes:
    """The data set of a Part-10 file (a C-STORE carries no file meta: the archive writes its own)."""
    from test_dimse import split_part10

    return split_part10(part10)[1]


def stow_one(node: Cloudfilm, key: str, data: bytes) -> bool:
    try:
        r = node.stow(key, [data])
    except requests.RequestException:
        return False
    return r.status_code == 200


def c_store_one(node: Cloudfilm, ds) -> bool:
    ae = pynet_ae(SCU)
    ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])
    try:
        assoc = ae.associate("127.0.0.1", node.dimse_port, ae_title=ARCHIVE_AE)
    except Exception:
        return False
    if not assoc.is_established:
        return False
    try:
        status = assoc.send_c_store(ds)
        return status is not None and "Status" in status and int(status.Status) == 0
    finally:
        assoc.release()


def client_run(index: int, nodes: list[Cloudfilm], key: str, ingest: Ingest, errors: list) -> None:
    study = f"2.25.{uuid.uuid4().int}"
    series = f"2.25.{uuid.uuid4().int}"
    try:
        for n in range(PER_CLIENT):
            ds = make_instance(study=study, series=series, patient=(f"CLIENT^{index}", f"C{index}"), charset=None,
                               date="20261201", time_="101010", modality="CT", sop_class=CT, number=n + 1,
                               accession=f"CL{index}", series_number=1, size=32)
            buf = io.BytesIO()
            ds.save_as(buf, enforce_file_format=True)
            data = buf.getvalue()
            use_dimse = (index + n) % 2 == 1
            for attempt in range(RETRIES):
                node = nodes[(index + n + attempt) % NODES]
                if node.proc is None or node.proc.poll() is not None:
                    continue
                ok = c_store_one(node, ds) if use_dimse else stow_one(node, key, data)
                if ok:
                    if ingest.ack(ds.SOPInstanceUID, study, series, data) >= KILL_AFTER:
                        ingest.faulted.wait(timeout=60)
                    break
                with ingest.lock:
                    ingest.refusals += 1
                time.sleep(0.2)
    except Exception as e:  # reported by the test, not lost in a thread
        errors.append(repr(e))


def test_ingest_survives_a_killed_node_and_a_stopped_store_node(cluster):
    garage, nodes, key, _ = cluster
    ingest = Ingest()
    errors: list = []
    threads = [threading.Thread(target=client_run, args=(i, nodes, key, ingest, errors)) for i in range(CLIENTS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 120
    while len(ingest.acknowledged) < KILL_AFTER and time.monotonic() < deadline and not errors:
        time.sleep(0.05)
    holder = sequencer(nodes)
    holder.proc.send_signal(signal.SIGKILL)
    holder.proc.wait(timeout=20)
    garage.stop_node(2)
    ingest.faulted.set()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert not any(t.is_alive() for t in threads), "a client did not finish"
    survivors = alive(nodes)
    assert len(survivors) == NODES - 1
    sent = CLIENTS * PER_CLIENT
    acknowledged = len(ingest.acknowledged)
    print(f"cluster: {sent} sent, {acknowledged} acknowledged, {ingest.refusals} refusals retried")
    assert acknowledged == sent, "every instance was acknowledged by some node in the end"

    # Every acknowledged instance, byte for byte, from every surviving node.
    lost = 0
    for node in survivors:
        http = node.session(key)
        for sop, (study, series, data) in ingest.acknowledged.items():
            r = http.get(f"{node.dicomweb}/studies/{study}/series/{series}/instances/{sop}",
                         headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                         timeout=HTTP_TIMEOUT)
            parts = conftest.parse_multipart(r) if r.status_code == 200 else []
            if not parts or dataset_of(parts[0][1]) != dataset_of(data):
                lost += 1
                print("missing or different:", node.url, sop, r.status_code, len(parts),
                      r.text[:200] if r.status_code != 200 else "", file=sys.stderr)
    assert lost == 0, f"{lost} acknowledged instance reads were missing or different"

    # No index row without its blob: every instance the index lists can be read.
    node = survivors[0]
    http = node.session(key)
    listed = 0
    for study in {s for s, _, _ in ingest.acknowledged.values()}:
        r = http.get(f"{node.dicomweb}/studies/{study}/instances", timeout=HTTP_TIMEOUT)
        assert r.status_code == 200, r.text
        for item in r.json():
            listed += 1
            sop = item["00080018"]["Value"][0]
            assert sop in ingest.acknowledged, f"an instance nobody was told was stored: {sop}"
    assert listed == acknowledged, "no orphan row and nothing missing"
    print(f"cluster: acknowledged {acknowledged} / lost {lost} / orphans {listed - acknowledged}")

    garage.start_node(2)
    for node in survivors:
        node.stop()
    verify = survivors[0].cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
