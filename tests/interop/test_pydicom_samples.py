"""Every .dcm file in pydicom's data/test_files folder, sent raw through STOW-RS.

Files that share a SOP Instance UID (MR_small*, rtdose*, SC_rgb_rle*...) go to different
organizations: file k of a UID group goes to organization R<k>, so no organization receives a
UID twice. Every file with valid meta and UIDs must be stored and come back byte-identical;
every refused file is listed below with its reason code. `rendered` must give a decodable image
for every stored image except the renderer limitations listed below.
"""

from __future__ import annotations

import collections
import io
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
import pytest
import requests
from PIL import Image

from conftest import parse_multipart

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
SAMPLES = sorted(p.name for p in TEST_FILES.glob("*.dcm"))

CANNOT_UNDERSTAND = 0xC000
DATASET_MISMATCH = 0xA900  # also: a required UID is missing
DUPLICATE_SOP_INSTANCE = 0x0111

# name -> (FailureReason, why)
REFUSED = {
    "ExplVR_BigEndNoMeta.dcm": (CANNOT_UNDERSTAND, "no file meta (no DICM prefix)"),
    "ExplVR_LitEndNoMeta.dcm": (CANNOT_UNDERSTAND, "no file meta (no DICM prefix)"),
    "no_meta.dcm": (CANNOT_UNDERSTAND, "no file meta (no DICM prefix)"),
    "rtstruct.dcm": (CANNOT_UNDERSTAND, "no file meta (no DICM prefix)"),
    "meta_missing_tsyntax.dcm": (CANNOT_UNDERSTAND, "file meta without Transfer Syntax UID"),
    "no_meta_group_length.dcm": (CANNOT_UNDERSTAND, "file meta without group length"),
    "JPEGLSNearLossless_08.dcm": (DATASET_MISMATCH, "no Study Instance UID"),
    "JPEGLSNearLossless_16.dcm": (DATASET_MISMATCH, "no Study Instance UID"),
    "SC_rgb_jls_lossy_line.dcm": (DATASET_MISMATCH, "no Study Instance UID"),
    "SC_rgb_jls_lossy_sample.dcm": (DATASET_MISMATCH, "no Study Instance UID"),
    "priv_SQ.dcm": (DATASET_MISMATCH, "no Study Instance UID"),
    "empty_charset_LEI.dcm": (DATASET_MISMATCH, "no SOP Class UID anywhere"),
    "nested_priv_SQ.dcm": (DATASET_MISMATCH, "no SOP Class UID anywhere"),
    "rtdose_rle.dcm": (DATASET_MISMATCH, "no SOP Class UID anywhere"),
    "rtdose_rle_1frame.dcm": (DATASET_MISMATCH, "no SOP Class UID anywhere"),
    "UN_sequence.dcm": (CANNOT_UNDERSTAND, "the data set does not parse"),
    "SC_rgb_jpeg.dcm": (CANNOT_UNDERSTAND, "declares explicit VR but is implicit (DCMTK fails too)"),
    "rtplan_truncated.dcm": (CANNOT_UNDERSTAND, "truncated"),
    "MR_truncated.dcm": (CANNOT_UNDERSTAND, "pixel data longer than what remains of the file"),
}

# Stored and served as stored, but not rendered: name -> why. The server answers 422
# (cannot decode) or 406 (transfer syntax it does not decode), and the original stays available.
RENDER_UNSUPPORTED = {
    "JPEG-lossy.dcm": "12-bit JPEG extended: the dicom-rs JPEG decoder rejects 12-bit precision",
    "JPGExtended.dcm": "12-bit JPEG extended: the dicom-rs JPEG decoder rejects 12-bit precision",
    "JPEG2000-embedded-sequence-delimiter.dcm": "the J2K codestream fails in OpenJPEG",
    "SC_rgb_rle_32bit.dcm": "32-bit RGB RLE: the dicom-rs RLE decoder takes 8 or 16 bits",
    "SC_rgb_rle_32bit_2frame.dcm": "32-bit RGB RLE: the dicom-rs RLE decoder takes 8 or 16 bits",
}

# ---- what pydicom says about each sample ----------------------------------------------------


@dataclass
class Sample:
    name: str
    data: bytes
    sop_uid: str | None
    has_pixels: bool
    rows: int | None = None
    columns: int | None = None


def describe(name: str) -> Sample:
    data = (TEST_FILES / name).read_bytes()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # several samples are deliberately malformed
            ds = pydicom.dcmread(io.BytesIO(data), force=True, defer_size=256)
        sop = str(ds.get("SOPInstanceUID", "") or "") or None
        has_pixels = any(t in ds for t in ("PixelData", "FloatPixelData", "DoubleFloatPixelData"))
        return Sample(name, data, sop, has_pixels, ds.get("Rows"), ds.get("Columns"))
    except Exception:
        return Sample(name, data, None, False)


INFO = {name: describe(name) for name in SAMPLES}


def rounds() -> dict[str, int]:
    """The organization index of each file: the k-th file with a SOP Instance UID goes to R<k>."""
    seen: dict[str, int] = collections.Counter()
    out = {}
    for name in SAMPLES:
        key = INFO[name].sop_uid or f"file:{name}"
        out[name] = seen[key]
        seen[key] += 1
    return out


ROUND = rounds()
ORGS = max(ROUND.values()) + 1
STORED = [n for n in SAMPLES if n not in REFUSED]
IMAGES = [n for n in STORED if INFO[n].has_pixels]
RENDERABLE = [n for n in IMAGES if n not in RENDER_UNSUPPORTED]
WITHOUT_PIXELS = [n for n in STORED if not INFO[n].has_pixels]

ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'
OCTETS = 'multipart/related; type="application/octet-stream"'
AS_STORED = 'multipart/related; type="*/*"'


# ---- the archive, with every sample sent once ---------------------------------------------


@dataclass
class Sent:
    status: int | None = None
    body: dict | None = None
    warning: str | None = None
    error: str | None = None

    def referenced(self) -> list[dict]:
        return (self.body or {}).get("00081199", {}).get("Value", [])

    def failed(self) -> list[dict]:
        return (self.body or {}).get("00081198", {}).get("Value", [])

    def url(self) -> str:
        (item,) = self.referenced()
        return item["00081190"]["Value"][0]


@dataclass
class Archive:
    server: object
    keys: list[str]
    sent: dict[str, Sent]

    def key(self, name: str) -> str:
        return self.keys[ROUND[name]]

    def get(self, name: str, suffix: str, accept: str, **kw):
        sent = self.sent[name]
        assert sent.status == 200, f"{name} was not stored: {sent}"
        return self.server.get(self.key(name), sent.url() + suffix, accept=accept, **kw)


@pytest.fixture(scope="module")
def archive(cloudfilm_factory) -> Archive:
    server = cloudfilm_factory({f"R{i}": f"Round {i}" for i in range(ORGS)})
    keys = [server.create_key(f"R{i}") for i in range(ORGS)]

    def send(name: str) -> Sent:
        try:
            response = server.stow(keys[ROUND[name]], [INFO[name].data])
            body = response.json() if response.content else None
            return Sent(response.status_code, body, response.headers.get("Warning"))
        except Exception as e:  # reported by the test of this file, not by all of them
            return Sent(error=repr(e))

    # Different organizations (or UIDs) never conflict, so the files go in parallel: a file
    # that is slow to refuse does not hold up the others.
    with ThreadPoolExecutor(max_workers=4) as pool:
        sent = dict(zip(SAMPLES, pool.map(send, SAMPLES)))
    return Archive(server, keys, sent)


def test_the_expected_lists_name_real_files():
    assert set(REFUSED) <= set(SAMPLES)
    assert set(RENDER_UNSUPPORTED) <= set(IMAGES)
    assert len(SAMPLES) >= 70, f"only {len(SAMPLES)} samples found in {TEST_FILES}"


# ---- STOW ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_stow(archive, name):
    sent = archive.sent[name]
    assert sent.error is None, sent.error
    if name in REFUSED:
        reason, why = REFUSED[name]
        assert sent.status == 409, f"expected a refusal ({why}), got {sent.status}: {sent.body}"
        assert sent.referenced() == []
        (failed,) = sent.failed()
        assert failed["00081197"]["Value"] == [reason], (why, sent.warning)
        assert sent.warning and "instance 1" in sent.warning
    else:
        assert sent.status == 200, f"{sent.status}: {sent.warning}"
        assert sent.failed() == []
        (item,) = sent.referenced()
        assert item["00081155"]["Value"] == [INFO[name].sop_uid]
        assert sent.url().startswith(archive.server.dicomweb + "/studies/")


@pytest.mark.parametrize("name", STORED)
def test_retrieve_byte_identical(archive, name):
    response = archive.get(name, "", ANY_DICOM)
    assert response.status_code == 200
    ((headers, body),) = parse_multipart(response)
    assert headers["content-type"].startswith("application/dicom")
    assert body == INFO[name].data


@pytest.mark.parametrize("name", STORED)
def test_instance_is_found_by_qido(archive, name):
    study, series, sop = archive.sent[name].url().split("/studies/")[1].split("/")[::2]
    response = archive.server.get(archive.key(name), f"/studies/{study}/series/{series}/instances")
    assert response.status_code == 200
    found = [r["00080018"]["Value"][0] for r in response.json()]
    assert sop in found


# ---- rendered -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", RENDERABLE)
def test_rendered(archive, name):
    response = archive.get(name, "/rendered", "image/jpeg")
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format == "JPEG"
    info = INFO[name]
    assert image.size == (info.columns, info.rows)


def rendered_png(archive, name: str) -> np.ndarray:
    response = archive.get(name, "/frames/1/rendered", "image/png")
    assert response.status_code == 200, response.text
    image = Image.open(io.BytesIO(response.content))
    image.load()
    assert image.format == "PNG"
    return np.asarray(image)


# The same image in another transfer syntax (lossless) renders to the very same pixels.
RENDER_TWINS = [
    ("MR_small.dcm", "MR_small_implicit.dcm"),
    ("MR_small.dcm", "MR_small_bigendian.dcm"),
    ("MR_small.dcm", "MR_small_expb.dcm"),
    ("MR_small.dcm", "MR_small_padded.dcm"),
    ("MR_small.dcm", "MR_small_RLE.dcm"),
    ("MR_small.dcm", "MR_small_jp2klossless.dcm"),
    ("MR_small.dcm", "MR_small_jpeg_ls_lossless.dcm"),
    ("liver_1frame.dcm", "liver_expb_1frame.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb_rle_16bit.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb_rle_2frame.dcm"),
    ("SC_rgb_rle.dcm", "SC_rgb_jpeg_gdcm.dcm"),
    pytest.param("SC_rgb_small_odd.dcm", "SC_rgb_small_odd_big_endian.dcm"),
]


@pytest.mark.parametrize(
    "reference, twin", RENDER_TWINS,
    ids=[(t.values if hasattr(t, "values") else t)[1] for t in RENDER_TWINS],
)
def test_rendered_like_its_twin(archive, reference, twin):
    expected, got = rendered_png(archive, reference), rendered_png(archive, twin)
    assert got.shape == expected.shape
    assert np.array_equal(got, expected)


@pytest.mark.parametrize("name", sorted(RENDER_UNSUPPORTED))
def test_rendering_unsupported(archive, name):
    response = archive.get(name, "/rendered", "image/jpeg")
    assert response.status_code in (406, 422), (response.status_code, RENDER_UNSUPPORTED[name])
    assert response.json()["error"]["code"] == "cannot_render"
    assert archive.get(name, "", ANY_DICOM).status_code == 200, "the original stays available"


@pytest.mark.parametrize("name", WITHOUT_PIXELS)
def test_no_pixel_data_means_no_frames(archive, name):
    assert archive.get(name, "/frames/1", OCTETS).status_code == 404
    assert archive.get(name, "/rendered", "image/jpeg").status_code == 404


# ---- frames -------------------------------------------------------------------------------


def little_endian(array: np.ndarray) -> bytes:
    return array.astype(array.dtype.newbyteorder("<")).tobytes()


def pixels_of(name: str, frame: int) -> bytes:
    """Frame `frame` (1-based) as pydicom decodes it (native and RLE only: lossless here)."""
    ds = pydicom.dcmread(TEST_FILES / name)
    array = ds.pixel_array
    if int(ds.get("NumberOfFrames", 1) or 1) > 1:
        array = array[frame - 1]
    return little_endian(array)


MR_SMALL = "MR_small.dcm"

# (name, frame, expected octets): the exact pixels where a lossless decode is known, else None
# (then only the size is compared with rows * columns * samples * bytes per sample).
FRAME_CASES = [
    ("CT_small.dcm", 1, "own"),
    ("MR_small_implicit.dcm", 1, MR_SMALL),
    ("MR_small_bigendian.dcm", 1, MR_SMALL),
    ("SC_rgb_small_odd.dcm", 1, "own"),
    pytest.param("SC_rgb_small_odd_big_endian.dcm", 1, "SC_rgb_small_odd.dcm"),
    ("rtdose.dcm", 15, "own"),
    ("MR_small_RLE.dcm", 1, MR_SMALL),
    ("SC_rgb_rle_2frame.dcm", 2, "own"),
    ("SC_rgb_rle_16bit_2frame.dcm", 2, "own"),
    ("MR_small_jp2klossless.dcm", 1, MR_SMALL),
    ("MR_small_jpeg_ls_lossless.dcm", 1, MR_SMALL),
    ("JPEG2000.dcm", 1, None),
    ("693_J2KI.dcm", 1, None),
    ("SC_rgb_jpeg_dcmtk.dcm", 1, None),
    ("examples_ybr_color.dcm", 30, None),
]


def case_id(case) -> str:
    name, frame, _ = case.values if hasattr(case, "values") else case
    return f"{name}-frame{frame}"


@pytest.mark.parametrize("name, frame, reference", FRAME_CASES, ids=[case_id(c) for c in FRAME_CASES])
def test_frame_as_octet_stream(archive, name, frame, reference):
    response = archive.get(name, f"/frames/{frame}", OCTETS)
    assert response.status_code == 200, response.text
    assert "transfer-syntax=1.2.840.10008.1.2.1" in response.headers["Content-Type"]
    ((headers, body),) = parse_multipart(response)
    assert headers["content-type"] == "application/octet-stream"
    ds = pydicom.dcmread(TEST_FILES / name, stop_before_pixels=True)
    expected_size = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
    assert len(body) == expected_size
    if reference is not None:
        assert body == pixels_of(name if reference == "own" else reference, frame)


@pytest.mark.parametrize("name", ["JPEG-lossy.dcm", "SC_rgb_rle_32bit.dcm"])
def test_undecodable_frame_as_octet_stream_is_a_clean_refusal(archive, name):
    try:
        response = archive.get(name, "/frames/1", OCTETS)
    except requests.exceptions.RequestException as e:
        pytest.fail(f"broken transfer: {e!r}")
    assert response.status_code in (406, 422), response.status_code


def test_several_frames_in_one_request(archive):
    response = archive.get("SC_rgb_rle_2frame.dcm", "/frames/2,1", OCTETS)
    assert response.status_code == 200
    bodies = [body for _, body in parse_multipart(response)]
    assert bodies == [pixels_of("SC_rgb_rle_2frame.dcm", 2), pixels_of("SC_rgb_rle_2frame.dcm", 1)]


def test_frame_beyond_the_last_is_not_found(archive):
    assert archive.get("SC_rgb_rle_2frame.dcm", "/frames/3", OCTETS).status_code == 404


@pytest.mark.parametrize(
    "name, media, fmt",
    [("SC_rgb_jpeg_dcmtk.dcm", "image/jpeg", "JPEG"), ("MR_small_jp2klossless.dcm", "image/jp2", "JPEG2000")],
)
def test_compressed_frame_as_stored(archive, name, media, fmt):
    response = archive.get(name, "/frames/1", AS_STORED)
    assert response.status_code == 200
    ((headers, body),) = parse_multipart(response)
    assert headers["content-type"] == media
    image = Image.open(io.BytesIO(body))
    image.load()
    assert image.format == fmt
    assert image.size == (INFO[name].columns, INFO[name].rows)


def test_native_frame_as_stored_is_octets(archive):
    response = archive.get("CT_small.dcm", "/frames/1", AS_STORED)
    assert response.status_code == 200
    ((headers, body),) = parse_multipart(response)
    assert headers["content-type"] == "application/octet-stream"
    assert body == pixels_of("CT_small.dcm", 1)


# ---- STOW outcomes beyond one file per request (organization "S") --------------------------


@pytest.fixture(scope="module")
def stow_org(archive):
    archive.server.create_org("S", "STOW semantics")
    return archive.server.create_key("S")


def read(name: str) -> bytes:
    return INFO[name].data


def test_some_stored_some_refused_is_202(archive, stow_org):
    response = archive.server.stow(stow_org, [read("CT_small.dcm"), read("no_meta.dcm")])
    assert response.status_code == 202
    body = response.json()
    assert [i["00081155"]["Value"][0] for i in body["00081199"]["Value"]] == [INFO["CT_small.dcm"].sop_uid]
    assert [i["00081197"]["Value"][0] for i in body["00081198"]["Value"]] == [CANNOT_UNDERSTAND]
    assert "instance 2" in response.headers["Warning"]


def test_same_bytes_again_is_a_success(archive, stow_org):
    first = archive.server.stow(stow_org, [read("rtplan.dcm")])
    again = archive.server.stow(stow_org, [read("rtplan.dcm")])
    assert (first.status_code, again.status_code) == (200, 200)
    assert "00081198" not in again.json()


def test_same_uid_different_bytes_keeps_the_first(archive, stow_org):
    first = archive.server.stow(stow_org, [read("MR_small.dcm")])
    assert first.status_code == 200
    second = archive.server.stow(stow_org, [read("MR_small_implicit.dcm")])
    assert second.status_code == 409
    (failed,) = second.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [DUPLICATE_SOP_INSTANCE]
    url = first.json()["00081199"]["Value"][0]["00081190"]["Value"][0]
    ((_, body),) = parse_multipart(archive.server.get(stow_org, url, accept=ANY_DICOM))
    assert body == read("MR_small.dcm")


def test_stow_to_another_study_is_refused(archive, stow_org):
    other_study = pydicom.dcmread(TEST_FILES / "CT_small.dcm").StudyInstanceUID
    response = archive.server.stow(stow_org, [read("waveform_ecg.dcm")], study=other_study)
    assert response.status_code == 409
    (failed,) = response.json()["00081198"]["Value"]
    assert failed["00081197"]["Value"] == [DATASET_MISMATCH]
