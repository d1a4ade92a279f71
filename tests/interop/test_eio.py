"""I/O errors (S2, issue 18 item 5): the blob storage starts answering EIO to writes and syncs,
as a failing disk does (an LD_PRELOAD shim built here with gcc, `faults/eio.c`, switched on and
off by a file), while the index stays writable. STOW-RS answers 507 naming 0xA700 and the I/O
error for every instance, a C-STORE answers 0xA700, both refusals are audited, nothing partial
is left behind, reads keep being served byte-identical, and once the disk behaves again the
next request stores without a restart.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from conftest import HTTP_TIMEOUT, STORAGE
from test_disk_full import LARGE, OUT_OF_RESOURCES, SCU, SMALL, _audit, _c_store, failure_reasons, instance, stow

SHIM = Path(__file__).resolve().parent / "faults" / "eio.c"

pytestmark = pytest.mark.skipif(STORAGE.endswith("+garage"),
                                reason="the blobs are in Garage: no local blob directory to fail")


@pytest.fixture(scope="module")
def failing(cloudfilm_factory, tmp_path_factory):
    build = tmp_path_factory.mktemp("eio")
    library = build / "eio.so"
    subprocess.run(["gcc", "-shared", "-fPIC", "-O2", "-o", str(library), str(SHIM), "-ldl"], check=True,
                   timeout=120)
    switch = build / "failing"
    server = cloudfilm_factory(
        orgs={"EIO": "Hospital on a failing disk"},
        env={"LD_PRELOAD": str(library), "CLOUDFILM_EIO_PATH": "/blobs/", "CLOUDFILM_EIO_SWITCH": str(switch)},
    )
    assert server.dimse_port, server.stderr_tail()
    server.key = server.create_key("EIO")
    server.add_ae("EIO", SCU)
    server.switch = switch
    return server


def blob_files(server) -> list[str]:
    """The names of the blob files (staged or in place: a settled blob moves, keeping its name)."""
    return [p.name for p in (server.data_dir / "blobs").rglob("*") if p.is_file() and p.name != "tmp.lock"]


def test_an_io_error_refuses_cleanly_keeps_reads_and_heals_by_itself(failing):
    stored = instance(SMALL)
    first = stow(failing, failing.key, [stored])
    assert first.status_code == 200, first.text[:300]
    before_files = blob_files(failing)
    before_audit = len(_audit(failing))

    failing.switch.touch()
    try:
        response = stow(failing, failing.key, [instance(SMALL), instance(LARGE)])
        assert response.status_code == 507, (response.status_code, response.text[:300])
        assert failure_reasons(response) == [OUT_OF_RESOURCES, OUT_OF_RESOURCES], response.text[:500]
        assert "I/O error" in response.headers.get("Warning", ""), response.headers
        assert _c_store(failing.dimse_port, instance(SMALL)) == OUT_OF_RESOURCES
        # Nothing partial stays: the blob directory holds what it held.
        assert sorted(blob_files(failing)) == sorted(before_files), (before_files, blob_files(failing))
        # Reads go on, byte-identical.
        info = first.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
        got = failing.session(failing.key).get(
            info, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
            timeout=HTTP_TIMEOUT)
        assert got.status_code == 200 and stored in got.content, got.status_code
    finally:
        failing.switch.unlink()

    refusals = [json.dumps(e) for e in _audit(failing)[before_audit:]]
    assert any("stow-rs" in e and "I/O error" in e for e in refusals), refusals
    assert any("c-store" in e and "I/O error" in e for e in refusals), refusals
    # The disk behaves again: the next requests store, without a restart.
    again = stow(failing, failing.key, [instance(SMALL), instance(LARGE)])
    assert again.status_code == 200, again.text[:300]
    assert _c_store(failing.dimse_port, instance(SMALL)) == 0
    assert "I/O error" in failing.stderr_tail(), "the operator's log says the storage failed"


def test_a_failed_fsync_is_never_acknowledged(failing):
    """The writes land in the page cache and only their flush to the disk fails (fsync, syncfs):
    the instance is refused, never acknowledged after a retried sync."""
    before_files = blob_files(failing)
    failing.switch.write_text("sync")
    try:
        response = stow(failing, failing.key, [instance(SMALL)])
        assert response.status_code == 507, (response.status_code, response.text[:300])
        assert failure_reasons(response) == [OUT_OF_RESOURCES], response.text[:300]
        assert _c_store(failing.dimse_port, instance(SMALL)) == OUT_OF_RESOURCES
        assert sorted(blob_files(failing)) == sorted(before_files)
    finally:
        failing.switch.unlink()
    assert stow(failing, failing.key, [instance(SMALL)]).status_code == 200
