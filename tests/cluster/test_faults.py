"""A cloudfilm node whose PostgreSQL or object store goes away while it runs, and comes back.

The node reaches PostgreSQL and its 3-node Garage cluster through loopback forwarders the test
cuts (new connections refused, open ones closed) and restores. While a store is gone, writes
answer 503 with Retry-After (C-STORE 0xA700) and acknowledge nothing, `/healthz` names what is
missing, reads the index alone can answer are served, and so are the objects the node still
holds in its own cache (what it stored or read itself); what another node stored is refused. Once
the store is back the node works again by itself, without a restart, and the audit chain verifies.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
from conftest import HTTP_TIMEOUT, Cloudfilm  # noqa: E402
from garage import GarageCluster  # noqa: E402
from tcpproxy import TcpProxy  # noqa: E402
from test_dimse import ARCHIVE_AE, CT, make_instance, pynet_ae  # noqa: E402

POSTGRES_SERVER = os.environ.get("CLOUDFILM_TEST_POSTGRES", "postgres://127.0.0.1:5432/postgres")
SCU = "FAULT_SCU"
RECOVERY = 60  # seconds the node may take to work again once a store is back
OUT_OF_RESOURCES = 0xA700


class Study:
    def __init__(self):
        self.study = f"2.25.{uuid.uuid4().int}"
        self.series = f"2.25.{uuid.uuid4().int}"
        self.count = 0

    def instance(self):
        self.count += 1
        ds = make_instance(study=self.study, series=self.series, patient=("FAULT^TEST", "F1"), charset=None,
                           date="20261201", time_="101010", modality="CT", sop_class=CT, number=self.count,
                           accession="FAULT1", series_number=1, size=32)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        return ds, buf.getvalue()


@pytest.fixture(scope="module")
def node(tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    garage = GarageCluster(nodes=3)
    garage.start()
    name = f"cloudfilm_faults_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"CREATE DATABASE {name}"], check=True, timeout=60)
    pg = urlparse(POSTGRES_SERVER)
    database = TcpProxy(pg.port or 5432, pg.hostname or "127.0.0.1").start()
    s3 = urlparse(garage.endpoint)
    objects = TcpProxy(s3.port, s3.hostname).start()
    storage = {
        "CLOUDFILM_DATABASE": f"postgres://127.0.0.1:{database.port}/{name}",
        "CLOUDFILM_BLOBS": f"s3://{garage.bucket}?endpoint=http://127.0.0.1:{objects.port}&region={garage.region}",
        "AWS_ACCESS_KEY_ID": garage.access_key_id,
        "AWS_SECRET_ACCESS_KEY": garage.secret_access_key,
        "CLOUDFILM_KEYS": str(root / "keyring.json"),
    }
    server, other = (Cloudfilm(root / name / "data", env={}) for name in ("node", "other"))
    try:
        for n in (server, other):
            n.data_dir.parent.mkdir(parents=True, exist_ok=True)
            conftest.use_storage(n.data_dir, storage)
        server.create_org("H1", "Hospital One")
        key = server.create_key("H1")
        server.add_ae("H1", SCU)
        server.start()
        other.start()
        yield server, key, database, objects, other
    finally:
        other.stop()
        server.stop()
        database.cut()
        objects.cut()
        garage.stop()
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


def associate(node: Cloudfilm):
    ae = pynet_ae(SCU)
    ae.add_requested_context(CT, ["1.2.840.10008.1.2.1"])
    return ae.associate("127.0.0.1", node.dimse_port, ae_title=ARCHIVE_AE)


def send(assoc, ds) -> int | None:
    status = assoc.send_c_store(ds)
    return int(status.Status) if status is not None and "Status" in status else None


def c_store(node: Cloudfilm, ds) -> int | None:
    """The C-STORE status, or None when no association could be made."""
    assoc = associate(node)
    if not assoc.is_established:
        return None
    try:
        return send(assoc, ds)
    finally:
        assoc.release()


def health(node: Cloudfilm) -> tuple[int, dict]:
    r = requests.get(node.url + "/healthz", timeout=HTTP_TIMEOUT)
    return r.status_code, r.json()


def stored(node: Cloudfilm, key: str, study: Study) -> set[str]:
    r = node.get(key, f"/studies/{study.study}/instances")
    assert r.status_code in (200, 204), (r.status_code, r.text[:300])
    return {item["00080018"]["Value"][0] for item in (r.json() if r.status_code == 200 else [])}


def retrieve(node: Cloudfilm, key: str, study: Study, sop: str) -> requests.Response:
    return node.get(key, f"/studies/{study.study}/series/{study.series}/instances/{sop}",
                    accept='multipart/related; type="application/dicom"; transfer-syntax=*')


def works_again(node: Cloudfilm, key: str, study: Study) -> dict[str, bytes]:
    """STOW retried (as a client would, after Retry-After) until it is acknowledged."""
    ds, data = study.instance()
    deadline = time.monotonic() + RECOVERY
    while True:
        r = node.stow(key, [data])
        if r.status_code == 200:
            return {ds.SOPInstanceUID: data}
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert time.monotonic() < deadline, f"the node did not recover within {RECOVERY}s: {node.stderr_tail()}"
        time.sleep(1)


@contextmanager
def outage(store: TcpProxy):
    """The store is gone inside the block and back after it, even when an assertion failed."""
    store.cut()
    try:
        yield
    finally:
        store.restore()


def assert_refused(r: requests.Response) -> None:
    assert r.status_code == 503, (r.status_code, r.text[:300])
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["error"]["code"] == "storage_unavailable", r.text


def test_a_lost_object_store_refuses_writes_serves_the_index_and_recovers(node):
    server, key, _, objects, other = node
    study = Study()
    kept = {}
    for stower in (server, other):
        ds, data = study.instance()
        assert stower.stow(key, [data]).status_code == 200
        kept[ds.SOPInstanceUID] = data
    own, elsewhere = kept

    with outage(objects):
        status, body = health(server)
        assert status == 503 and body == {"database": "ok", "blobs": "unreachable"}, (status, body)
        refused = []
        ds, data = study.instance()
        assert_refused(server.stow(key, [data]))
        refused.append(ds.SOPInstanceUID)
        ds, _ = study.instance()
        assert c_store(server, ds) == OUT_OF_RESOURCES
        refused.append(ds.SOPInstanceUID)
        # What the index alone answers is served, and what this node holds in its cache; what needs
        # the object store is refused cleanly.
        assert stored(server, key, study) == set(kept)
        r = retrieve(server, key, study, own)
        assert r.status_code == 200 and _same(r, kept[own]), (r.status_code, r.text[:300])
        r = retrieve(server, key, study, elsewhere)
        assert r.status_code == 503, (r.status_code, r.text[:300])
        assert int(r.headers["Retry-After"]) > 0

    kept.update(works_again(server, key, study))
    status, body = health(server)
    assert status == 200 and body == {"database": "ok", "blobs": "ok"}, (status, body)
    ds, _ = study.instance()
    assert c_store(server, ds) == 0
    kept[ds.SOPInstanceUID] = None
    listed = stored(server, key, study)
    assert listed == set(kept), "nothing refused was kept, everything acknowledged is there"
    assert not listed & set(refused)
    for sop, data in kept.items():
        r = retrieve(server, key, study, sop)
        assert r.status_code == 200, (sop, r.status_code)
        if data is not None:
            assert _same(r, data), sop


def _same(r: requests.Response, data: bytes) -> bool:
    from test_cluster import dataset_of

    return dataset_of(conftest.parse_multipart(r)[0][1]) == dataset_of(data)


def test_a_lost_database_refuses_writes_and_the_node_recovers_by_itself(node):
    server, key, database, _, _ = node
    study = Study()
    ds, data = study.instance()
    assert server.stow(key, [data]).status_code == 200
    kept = {ds.SOPInstanceUID: data}

    held = associate(server)  # made while the database answers
    assert held.is_established
    with outage(database):
        status, body = health(server)
        assert status == 503 and body == {"database": "unreachable", "blobs": "ok"}, (status, body)
        ds, data = study.instance()
        assert_refused(server.stow(key, [data]))
        refused = [ds.SOPInstanceUID]
        ds, _ = study.instance()
        try:
            assert send(held, ds) == OUT_OF_RESOURCES, "the sender keeps the instance and retries"
        finally:
            held.release()
        refused.append(ds.SOPInstanceUID)
        # A new caller cannot be checked against the registered AE titles now: rejected, transiently.
        rejected = associate(server)
        assert rejected.is_rejected and not rejected.is_established
        assert rejected.acceptor.primitive.result == 0x02, "rejected-transient: the caller may retry"
        assert server.proc.poll() is None, "the node keeps running"

    kept.update(works_again(server, key, study))
    status, body = health(server)
    assert status == 200 and body == {"database": "ok", "blobs": "ok"}, (status, body)
    listed = stored(server, key, study)
    assert listed == set(kept) and not listed & set(refused)
    for sop, data in kept.items():
        r = retrieve(server, key, study, sop)
        assert r.status_code == 200 and _same(r, data), (sop, r.status_code)


def test_the_audit_chain_verifies_after_the_outages(node):
    server, _, _, _, other = node
    other.stop()
    server.stop()
    verify = server.cli("audit", "verify", check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit chain intact" in verify.stdout
