"""Disk full (S2, issue 13 item 11): the blob volume is a small tmpfs filled to the last byte,
mounted over DATA/blobs in the server's own mount namespace (`unshare -rm`), so the index and
its audit chain stay writable, as when the images live on their own volume.

STOW-RS answers 507 *and* names 0xA700 for every instance refused for lack of space, whatever
its size (a small instance fails when its spool is finished, a large one while it streams);
a C-STORE refused while full answers 0xA700 and leaves an import entry in the audit chain.
Freeing the space (through /proc/PID/root, the server's view) lets the next request store.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import uuid
from pathlib import Path

import numpy as np
import pytest
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid
from pynetdicom import AE

from conftest import HTTP_TIMEOUT, STORAGE

CT = "1.2.840.10008.5.1.4.1.1.2"
SCU = "FULL_SCU"
OUT_OF_RESOURCES = 0xA700

# Mounts a 4 MiB tmpfs over DATA/blobs (DATA from the server's --data), fills all but 8 KiB
# (room for a spool's header, not for an instance), then execs the server.
FILL_BLOBS = r"""
set -e
prev=""; for arg in "$@"; do [ "$prev" = --data ] && data="$arg"; prev="$arg"; done
mount -t tmpfs -o size=4m,mode=0700 tmpfs "$data/blobs"
mkdir -p "$data/blobs/tmp" "$data/blobs/objects"
head -c $((4096 * 1024 - 8192)) /dev/zero > "$data/blobs/filler"
exec "$@"
"""


def _namespaces_available() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs tmpfs /mnt"], capture_output=True,
                           timeout=30)
    return probe.returncode == 0


pytestmark = [
    pytest.mark.skipif(not _namespaces_available(), reason="needs unshare -rm and tmpfs mounts (user namespaces)"),
    # What fills up here is the local blob directory (a tmpfs mounted on DATA/blobs); with the
    # blobs in an object store there is no such directory (only the node's spool).
    pytest.mark.skipif(STORAGE.endswith("+garage"), reason="the blobs are in Garage: no local blob directory"),
]


def instance(pixels: int) -> bytes:
    """A CT image of pixels x pixels (16-bit), Part 10."""
    sop = generate_uid()
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID, ds.SOPInstanceUID = CT, sop
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.PatientName, ds.PatientID = "FULL^DISK", "FULL-1"
    ds.StudyDate, ds.Modality, ds.InstanceNumber = "20240101", "CT", 1
    ds.Rows = ds.Columns = pixels
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = (np.arange(pixels * pixels, dtype=np.uint16) % 4096).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


SMALL = 128  # 32 KiB of pixels: held in memory until the spool is finished
LARGE = 512  # 512 KiB of pixels: written while it streams


@pytest.fixture(scope="module")
def full(cloudfilm_factory):
    server = cloudfilm_factory(
        orgs={"FULL": "Hospital on a full disk"},
        wrapper=["unshare", "-rm", "sh", "-c", FILL_BLOBS, "sh"],
    )
    assert server.dimse_port, server.stderr_tail()
    server.key = server.create_key("FULL")
    server.add_ae("FULL", SCU)
    return server


def stow(server, key: str, instances: list[bytes]):
    boundary = uuid.uuid4().hex
    body = bytearray()
    for data in instances:
        body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
               "Accept": "application/dicom+json"}
    return server.session(key).post(f"{server.dicomweb}/studies", data=bytes(body), headers=headers,
                                    timeout=HTTP_TIMEOUT)


def failure_reasons(response) -> list[int]:
    body = response.json()
    return [item["00081197"]["Value"][0] for item in body.get("00081198", {}).get("Value", [])]


@pytest.mark.parametrize("pixels", [SMALL, LARGE], ids=["small", "large"])
def test_stow_on_a_full_disk_answers_507_with_0xA700(full, pixels):
    response = stow(full, full.key, [instance(pixels)])
    assert response.status_code == 507, (response.status_code, response.text[:300])
    assert response.headers["Content-Type"].startswith("application/dicom+json"), response.headers
    assert failure_reasons(response) == [OUT_OF_RESOURCES], response.text[:300]
    assert "00081199" not in response.json()


def blobs(server) -> Path:
    """DATA/blobs as the server sees it (its own mount namespace)."""
    return Path(f"/proc/{server.proc.pid}/root") / str(server.data_dir).lstrip("/") / "blobs"


def test_every_instance_of_a_mixed_request_is_named_and_audited(full):
    before = len(_audit(full))
    response = stow(full, full.key, [instance(SMALL), instance(LARGE), instance(SMALL)])
    assert response.status_code == 507, (response.status_code, response.text[:300])
    assert failure_reasons(response) == [OUT_OF_RESOURCES] * 3
    assert list((blobs(full) / "tmp").iterdir()) == [], "no partial file is left"
    assert list((blobs(full) / "objects").iterdir()) == []
    entries = [json.dumps(e) for e in _audit(full)[before:]]
    assert any("stow-rs" in e and "rejected 3" in e and "out of storage space" in e for e in entries), entries


def _audit(server) -> list[dict]:
    exported = server.cli("audit", "export")
    return [json.loads(line) for line in exported.stdout.splitlines() if line.strip()]


def _c_store(port: int, data: bytes) -> int | None:
    from pydicom import dcmread

    ds = dcmread(io.BytesIO(data))
    ae = AE(ae_title=SCU)
    ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = 30
    ae.add_requested_context(CT, [ExplicitVRLittleEndian])
    assoc = ae.associate("127.0.0.1", port, ae_title="CLOUDFILM")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(ds)
        return status.Status if "Status" in status else None
    finally:
        assoc.release()


@pytest.mark.parametrize("pixels", [SMALL, LARGE], ids=["small", "large"])
def test_c_store_on_a_full_disk_is_refused_and_audited(full, pixels):
    before = len(_audit(full))
    assert _c_store(full.dimse_port, instance(pixels)) == OUT_OF_RESOURCES
    new = _audit(full)[before:]
    refusals = [e for e in new if "c-store" in json.dumps(e) and "out of storage space" in json.dumps(e)]
    assert len(refusals) == 1, new
    text = json.dumps(refusals[0])
    assert f"ae:{SCU}" in text and "rejected 1" in text, text
    assert "FULL^DISK" not in text and "FULL-1" not in text


def test_freed_space_stores_again(full):
    """The service stayed up; once space is freed the same archive stores (last in this file)."""
    (blobs(full) / "filler").unlink()
    response = stow(full, full.key, [instance(SMALL), instance(LARGE)])
    assert response.status_code == 200, (response.status_code, response.text[:300])
    assert _c_store(full.dimse_port, instance(SMALL)) == 0
