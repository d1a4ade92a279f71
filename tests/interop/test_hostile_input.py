"""Hostile input (S6): deflated nesting and bombs, forged codestream headers, forged file meta
lengths and seeded random mutations of pydicom's compressed samples, by STOW-RS and by C-STORE.
Every answer is a 2xx or a 4xx with a reason (never 5xx; over DIMSE a status other than 0x0110
processing failure), the server keeps answering, and its peak resident memory (VmHWM) stays
under PEAK_BOUND_KB."""

from __future__ import annotations

import io
import random
import struct
import zlib
from pathlib import Path

import pydicom
import pytest
from pydicom.uid import generate_uid
from pynetdicom import AE, _config

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
# Measured on this machine: about 150 MB after the whole corpus; the bomb alone used 8.3 GB before.
PEAK_BOUND_KB = 600 * 1024
DEFLATED = "1.2.840.10008.1.2.1.99"


def vmhwm_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


HOSTILE_SCU = "HOSTILE_SCU"
PROCESSING_FAILURE = 0x0110


@pytest.fixture(scope="module")
def server(cloudfilm_factory):
    server = cloudfilm_factory({"H": "Hostile"})
    server.key = server.create_key("H")
    server.add_ae("H", HOSTILE_SCU)
    return server


def c_store_files(server, paths: list[Path]) -> list[int | None]:
    """C-STORE of files exactly as they are (pynetdicom's chunked mode), one context per class
    and syntax their file meta names; the status of each file sent (None: no answer)."""
    contexts = set()
    for path in paths:
        meta = pydicom.filereader.read_file_meta_info(path)
        contexts.add((meta.MediaStorageSOPClassUID, meta.TransferSyntaxUID))
    ae = AE(ae_title=HOSTILE_SCU)
    for sop_class, syntax in sorted(contexts):
        ae.add_requested_context(sop_class, [syntax])
    assoc = ae.associate("127.0.0.1", server.dimse_port, ae_title=server.dimse_ae)
    assert assoc.is_established
    previous = _config.STORE_SEND_CHUNKED_DATASET
    _config.STORE_SEND_CHUNKED_DATASET = True
    statuses = []
    try:
        for path in paths:
            try:
                status = assoc.send_c_store(path)
            except zlib.error:
                continue  # pynetdicom inflates a deflated file to find its UIDs: this one it cannot
            statuses.append(int(status.Status) if "Status" in status else None)
            assert assoc.is_established, f"the association ended after {len(statuses)} files"
    finally:
        _config.STORE_SEND_CHUNKED_DATASET = previous
        assoc.release()
    return statuses


def part10(ds: pydicom.Dataset) -> bytes:
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def meta_only(ts: str) -> bytes:
    """A file meta group for a deflated data set that follows it."""
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ts
    out = io.BytesIO()
    pydicom.filewriter.write_file_meta_info(out, ds.file_meta, enforce_standard=True)
    return b"\0" * 128 + b"DICM" + out.getvalue()


def raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


def identity_elements() -> bytes:
    """SOP class/instance, study and series UIDs, explicit VR little endian."""
    out = b""
    for group, elem, value in [
        (0x0008, 0x0016, "1.2.840.10008.5.1.4.1.1.7"),
        (0x0008, 0x0018, generate_uid()),
        (0x0020, 0x000D, generate_uid()),
        (0x0020, 0x000E, generate_uid()),
    ]:
        v = value.encode() + (b"\0" if len(value) % 2 else b"")
        out += struct.pack("<HH2sH", group, elem, b"UI", len(v)) + v
    return out


def assert_refused_or_stored(response):
    assert response.status_code < 500, (response.status_code, response.text[:300])


def assert_alive(server):
    assert server.get(server.key, "/studies").status_code in (200, 204)


def test_deeply_nested_deflated_data_set_is_refused(server):
    nested = identity_elements()
    nested += (struct.pack("<HH2sHI", 0x0008, 0x1115, b"SQ", 0, 0xFFFFFFFF) + struct.pack("<HHI", 0xFFFE, 0xE000, 0xFFFFFFFF)) * 100_000
    body = meta_only(DEFLATED) + raw_deflate(nested)
    response = server.stow(server.key, [body])
    assert response.status_code == 409, (response.status_code, response.text[:300])
    assert "nested deeper" in response.text or "0xC000" in response.text or "49152" in response.text
    assert_alive(server)


def test_deflate_bomb_is_refused_while_inflating(server):
    # Nearly 4 GiB of zeros in one private OB element: about 4 MB deflated.
    size = 0xFFFFFFF0
    header = identity_elements() + struct.pack("<HH2sH", 0x0009, 0x0010, b"LO", 4) + b"TEST"
    header += struct.pack("<HH2sHI", 0x0009, 0x1010, b"OB", 0, size)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    chunks = [c.compress(header)]
    zeros = bytes(1 << 24)
    for _ in range(size // len(zeros)):
        chunks.append(c.compress(zeros))
    chunks.append(c.flush())
    body = meta_only(DEFLATED) + b"".join(chunks)
    assert len(body) < 8 << 20
    response = server.stow(server.key, [body])
    assert response.status_code == 409, (response.status_code, response.text[:300])
    assert_alive(server)
    assert vmhwm_kb(server.proc.pid) < PEAK_BOUND_KB


def renamed(body: bytes) -> tuple[bytes, str | None]:
    """The file under a fresh SOP Instance UID (and that UID), or as it is (and None) when
    pydicom cannot read it back."""
    try:
        mutated = pydicom.dcmread(io.BytesIO(body), force=True)
        mutated.SOPInstanceUID = generate_uid()
        mutated.file_meta.MediaStorageSOPInstanceUID = mutated.SOPInstanceUID
        return part10(mutated), str(mutated.SOPInstanceUID)
    except Exception:
        return body, None


def write(path: Path, body: bytes) -> Path:
    path.write_bytes(body)
    return path


def instance_path(qido_result: dict) -> str:
    study, series, sop = (qido_result[t]["Value"][0] for t in ("0020000D", "0020000E", "00080018"))
    return f"/studies/{study}/series/{series}/instances/{sop}"


def stored_paths(server, response) -> list[str]:
    if response.status_code != 200:
        return []
    refs = response.json().get("00081199", {}).get("Value", [])
    paths = []
    for ref in refs:
        url = ref["00081190"]["Value"][0]
        paths.append(url.split("/dicom-web", 1)[1])
    return paths


def ask_for_pixels(server, path: str):
    for suffix, accept in [
        ("/frames/1/rendered", "image/jpeg"),
        ("/thumbnail", "image/jpeg"),
        ("/frames/1", 'multipart/related; type="application/octet-stream"'),
    ]:
        r = server.get(server.key, path + suffix, accept=accept)
        assert r.status_code < 500, (path + suffix, r.status_code, r.text[:200])


def test_a_jpeg_frame_claiming_a_huge_size_is_refused_not_decoded(server):
    ds = pydicom.dcmread(TEST_FILES / "SC_rgb_jpeg_dcmtk.dcm")
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    data = bytearray(ds.PixelData)
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", 65500, 65500)
    ds.PixelData = bytes(data)
    response = server.stow(server.key, [part10(ds)])
    paths = stored_paths(server, response)
    assert paths, response.text[:300]
    r = server.get(server.key, paths[0] + "/frames/1/rendered", accept="image/jpeg")
    assert r.status_code == 422, r.status_code
    ask_for_pixels(server, paths[0])
    assert vmhwm_kb(server.proc.pid) < PEAK_BOUND_KB


def test_a_forged_file_meta_group_length_is_refused(server):
    data = bytearray((TEST_FILES / "CT_small.dcm").read_bytes())
    at = data.find(b"\x02\x00\x00\x00UL")
    data[at + 8 : at + 12] = struct.pack("<I", 0xF0000000)
    response = server.stow(server.key, [bytes(data[:279])])
    assert response.status_code == 409, response.status_code
    assert_alive(server)


@pytest.mark.parametrize("sample,count", [("MR_small_RLE.dcm", 120), ("image_dfl.dcm", 60), ("SC_rgb_jpeg_dcmtk.dcm", 60)])
def test_random_mutations_never_fail_the_server(server, sample, count, tmp_path):
    original = (TEST_FILES / sample).read_bytes()
    ds = pydicom.dcmread(TEST_FILES / sample)
    pixel_start = original.find(b"\xe0\x7f\x10\x00")
    # Deflated files have no visible pixel tag: mutate anywhere past the file meta.
    start = pixel_start if pixel_start > 0 else 400
    rng = random.Random(f"cloudfilm-{sample}")
    bodies = []
    for _ in range(count):
        mutated = bytearray(original)
        for _ in range(rng.randint(1, 8)):
            pos = rng.randrange(start, len(mutated))
            mutated[pos] = rng.randrange(256)
        bodies.append(bytes(mutated))
    for chunk in range(0, len(bodies), 20):
        # Every mutation shares the sample's UIDs: one org keeps the first, the rest conflict;
        # each is also stored alone under a fresh UID below.
        assert_refused_or_stored(server.stow(server.key, bodies[chunk : chunk + 20]))
    by_dimse, dimse_uids = [], []
    for i, body in enumerate(bodies[: count // 3]):
        response = server.stow(server.key, [renamed(body)[0]])
        assert_refused_or_stored(response)
        for path in stored_paths(server, response):
            ask_for_pixels(server, path)
        by_store, uid = renamed(body)
        if pydicom.misc.is_dicom(write(tmp_path / f"m{i}.dcm", by_store)):
            by_dimse.append(tmp_path / f"m{i}.dcm")
            dimse_uids += [uid] if uid else []
    # The same kind of mutations by C-STORE, each under a UID of its own.
    statuses = c_store_files(server, by_dimse)
    assert len(statuses) >= len(by_dimse) // 2, (len(statuses), len(by_dimse))
    assert None not in statuses and PROCESSING_FAILURE not in statuses, statuses
    for uid in dimse_uids:
        found = server.get(server.key, "/instances", params={"SOPInstanceUID": uid})
        assert found.status_code in (200, 204), found.status_code
        for instance in found.json() if found.status_code == 200 else []:
            ask_for_pixels(server, instance_path(instance))
    assert_alive(server)
    assert vmhwm_kb(server.proc.pid) < PEAK_BOUND_KB
    del ds


def test_a_frame_declaring_more_bytes_than_the_decoder_may_hold_is_refused(server):
    # 8000 × 8000 samples of 32 bits: under the pixel limit, but 256 MB for one frame, with
    # 256 bytes of pixel data behind the claim.
    ds = pydicom.dcmread(TEST_FILES / "CT_small.dcm")
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.Rows = ds.Columns = 8000
    ds.BitsAllocated, ds.BitsStored, ds.HighBit = 32, 32, 31
    ds.PixelData = bytes(256)
    response = server.stow(server.key, [part10(ds)])
    paths = stored_paths(server, response)
    assert paths, response.text[:300]
    for suffix in ("/frames/1/rendered", "/thumbnail"):
        r = server.get(server.key, paths[0] + suffix, accept="image/jpeg")
        # Refused before any decoder runs, with the reason.
        assert (r.status_code, r.json()["error"]["code"]) == (413, "frame_too_large"), (suffix, r.text[:200])
    assert vmhwm_kb(server.proc.pid) < PEAK_BOUND_KB
