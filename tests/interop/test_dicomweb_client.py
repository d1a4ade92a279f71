"""cloudfilm against dicomweb-client (the PyPI DICOMweb client) and pydicom datasets.

Three studies are made in memory with known pixel values:
  A  DOE^JOHN    PID-A  2024-01-15  CT (3 instances) + OT (1 RGB instance)  sent as raw bytes
  B  DOE^JANE    PID-B  2024-03-10  MR (1 instance, 4 frames)                stored by dicomweb-client
  C  SMITH^ALICE PID-C  2023-12-01  CR (1 instance, 10 rows x 20 columns)    stored by dicomweb-client
Study A goes through STOW-RS as raw Part-10 bytes because byte identity is checked on it
(dicomweb-client re-encodes the datasets it stores).
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import numpy as np
import pydicom
import pytest
import requests
from dicomweb_client import DICOMwebClient
from dicomweb_client.session_utils import create_session_from_user_pass
from PIL import Image
from pydicom.dataset import Dataset, FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, PYDICOM_IMPLEMENTATION_UID, generate_uid

from conftest import parse_multipart, session_for

CT_IMAGE = "1.2.840.10008.5.1.4.1.1.2"
MR_IMAGE = "1.2.840.10008.5.1.4.1.1.4"
CR_IMAGE = "1.2.840.10008.5.1.4.1.1.1"
SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"

ANY_DICOM = 'multipart/related; type="application/dicom"; transfer-syntax=*'


# ---- the test data ------------------------------------------------------------------------


def make_instance(
    *,
    study: str,
    series: str,
    patient: tuple[str, str],
    date: str,
    description: str,
    modality: str,
    sop_class: str,
    number: int,
    pixels: np.ndarray,
    photometric: str = "MONOCHROME2",
) -> FileDataset:
    """A Part-10 dataset whose pixel data is `pixels` ((frames,) rows, cols (, samples))."""
    sop = generate_uid()
    meta = FileMetaDataset()
    # dicomweb-client writes datasets with pydicom.dcmwrite as they are: a group length must be
    # present (pydicom fills in its value) or cloudfilm refuses the meta (PS3.10 makes it Type 1).
    meta.FileMetaInformationGroupLength = 0
    meta.FileMetaInformationVersion = b"\0\1"
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = sop
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = FileDataset(None, Dataset(), file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = sop
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.PatientName, ds.PatientID = patient
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = date
    ds.StudyTime = "101500"
    ds.SeriesDate = date
    ds.StudyDescription = description
    ds.InstitutionName = "Interop General Hospital"
    ds.AccessionNumber = f"ACC{patient[1][-1]}"
    ds.StudyID = "1"
    ds.ReferringPhysicianName = "WHO^CARES"
    ds.Modality = modality
    ds.SeriesNumber = 1 if modality != "OT" else 2
    ds.InstanceNumber = number
    samples = 3 if photometric == "RGB" else 1
    multi = pixels.ndim == (4 if samples == 3 else 3)
    ds.Rows, ds.Columns = pixels.shape[1:3] if multi else pixels.shape[0:2]
    if multi:
        ds.NumberOfFrames = pixels.shape[0]
    ds.SamplesPerPixel = samples
    ds.PhotometricInterpretation = photometric
    if samples == 3:
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits if bits == 8 else 12
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 0
    if modality == "CT":
        ds.RescaleIntercept = 0
        ds.RescaleSlope = 1
    ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    return ds


def to_bytes(ds: FileDataset) -> bytes:
    buf = io.BytesIO()
    ds.save_as(buf, enforce_file_format=True)
    return buf.getvalue()


@dataclass
class Study:
    uid: str
    patient_id: str
    instances: list[FileDataset] = field(default_factory=list)

    def series_uids(self) -> list[str]:
        return sorted({ds.SeriesInstanceUID for ds in self.instances})

    def in_series(self, series: str) -> list[FileDataset]:
        return [ds for ds in self.instances if ds.SeriesInstanceUID == series]


def build_studies() -> dict[str, Study]:
    a, b, c = (Study(generate_uid(), pid) for pid in ("PID-A", "PID-B", "PID-C"))
    ct_series, ot_series = generate_uid(), generate_uid()
    for n in range(1, 4):
        a.instances.append(
            make_instance(
                study=a.uid, series=ct_series, patient=("DOE^JOHN", "PID-A"), date="20240115",
                description="CT CHEST", modality="CT", sop_class=CT_IMAGE, number=n,
                pixels=((np.arange(32 * 32) * 3 + n * 7) % 4096).astype(np.uint16).reshape(32, 32),
            )
        )
    rgb = np.zeros((8, 8, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 2] = 200, 50
    a.instances.append(
        make_instance(
            study=a.uid, series=ot_series, patient=("DOE^JOHN", "PID-A"), date="20240115",
            description="CT CHEST", modality="OT", sop_class=SECONDARY_CAPTURE, number=1,
            pixels=rgb, photometric="RGB",
        )
    )
    frames = np.stack([np.arange(256, dtype=np.uint16).reshape(16, 16) + 1000 * f for f in range(4)])
    b.instances.append(
        make_instance(
            study=b.uid, series=generate_uid(), patient=("DOE^JANE", "PID-B"), date="20240310",
            description="MR BRAIN", modality="MR", sop_class=MR_IMAGE, number=1, pixels=frames,
        )
    )
    c.instances.append(
        make_instance(
            study=c.uid, series=generate_uid(), patient=("SMITH^ALICE", "PID-C"), date="20231201",
            description="CR KNEE", modality="CR", sop_class=CR_IMAGE, number=1,
            pixels=(np.arange(200) % 256).astype(np.uint8).reshape(10, 20),
        )
    )
    return {"A": a, "B": b, "C": c}


def frame_bytes(ds: FileDataset, n: int) -> bytes:
    """Frame n (1-based) of `ds` as little-endian samples."""
    per_frame = ds.Rows * ds.Columns * ds.SamplesPerPixel * (ds.BitsAllocated // 8)
    return bytes(ds.PixelData[(n - 1) * per_frame : n * per_frame])


def value(result: dict, tag: str):
    values = result.get(tag, {}).get("Value", [])
    return values[0] if values else None


def uids(results: list[dict], tag: str) -> set[str]:
    return {value(r, tag) for r in results}


STUDY_UID, SERIES_UID, SOP_UID = "0020000D", "0020000E", "00080018"


# ---- fixtures -----------------------------------------------------------------------------


@dataclass
class World:
    server: object
    key: str
    other_key: str
    studies: dict[str, Study]
    raw: dict[str, bytes]  # SOP Instance UID -> the bytes sent for study A

    def client(self, key: str | None = None, basic: bool = False) -> DICOMwebClient:
        key = self.key if key is None else key
        if basic:
            session = create_session_from_user_pass(key.split(".", 1)[0], key)
            session.trust_env = False
            client = DICOMwebClient(url=self.server.dicomweb, session=session)
        else:
            client = DICOMwebClient(
                url=self.server.dicomweb,
                session=session_for(None),
                headers={"Authorization": f"Bearer {key}"},
            )
        client.set_http_retry_params(retry=False)
        return client


@pytest.fixture(scope="module")
def world(cloudfilm_factory) -> World:
    server = cloudfilm_factory({"H1": "Hospital One", "H2": "Hospital Two"})
    key, other_key = server.create_key("H1"), server.create_key("H2")
    studies = build_studies()

    raw = {ds.SOPInstanceUID: to_bytes(ds) for ds in studies["A"].instances}
    response = server.stow(key, list(raw.values()))
    assert response.status_code == 200, (response.status_code, response.text)
    stored = response.json()["00081199"]["Value"]
    assert {value(item, "00081155") for item in stored} == set(raw)

    client = DICOMwebClient(url=server.dicomweb, session=session_for(None),
                            headers={"Authorization": f"Bearer {key}"})
    client.set_http_retry_params(retry=False)
    for name in ("B", "C"):
        result = client.store_instances(studies[name].instances)
        assert "FailedSOPSequence" not in result
        assert [item.ReferencedSOPInstanceUID for item in result.ReferencedSOPSequence] == [
            ds.SOPInstanceUID for ds in studies[name].instances
        ]
    return World(server, key, other_key, studies, raw)


@pytest.fixture(scope="module")
def client(world) -> DICOMwebClient:
    return world.client()


# ---- STOW ---------------------------------------------------------------------------------


def test_stored_instances_answer_with_retrieve_urls_on_this_server(world):
    a = world.studies["A"]
    again = world.server.stow(world.key, [world.raw[a.instances[0].SOPInstanceUID]])
    assert again.status_code == 200, "re-sending identical bytes is an idempotent success"
    body = again.json()
    assert "00081198" not in body
    url = value(body["00081199"]["Value"][0], "00081190")
    ds = a.instances[0]
    assert url == (
        f"{world.server.dicomweb}/studies/{ds.StudyInstanceUID}"
        f"/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    )


# ---- QIDO ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "filters, expected",
    [
        ({}, "ABC"),
        ({"PatientName": "DOE*"}, "AB"),
        ({"PatientName": "DOE^JA*"}, "B"),
        ({"PatientName": "SMITH*"}, "C"),
        ({"PatientName": "NOBODY*"}, ""),
        ({"PatientID": "PID-B"}, "B"),
        ({"PatientID": "PID-"}, ""),  # no wildcard: exact match only
        ({"StudyDate": "20240101-20241231"}, "AB"),
        ({"StudyDate": "-20231231"}, "C"),
        ({"StudyDate": "20240201-"}, "B"),
        ({"StudyDate": "20240115"}, "A"),
        ({"ModalitiesInStudy": "MR"}, "B"),
        ({"ModalitiesInStudy": "OT"}, "A"),
        ({"ModalitiesInStudy": "US"}, ""),
        ({"PatientName": "DOE*", "StudyDate": "20240301-20240331"}, "B"),
    ],
    ids=lambda v: "-".join(f"{k}={x}" for k, x in v.items()) if isinstance(v, dict) else None,
)
def test_search_for_studies(world, client, filters, expected):
    results = client.search_for_studies(search_filters=filters)
    assert uids(results, STUDY_UID) == {world.studies[s].uid for s in expected}


def test_study_results_carry_the_default_attributes(world, client):
    (result,) = client.search_for_studies(search_filters={"PatientID": "PID-A"})
    assert value(result, "00100010") == {"Alphabetic": "DOE^JOHN"}
    assert value(result, "00100020") == "PID-A"
    assert value(result, "00080020") == "20240115"
    assert set(result["00080061"]["Value"]) == {"CT", "OT"}
    assert value(result, "00201206") == 2  # NumberOfStudyRelatedSeries
    assert value(result, "00201208") == 4  # NumberOfStudyRelatedInstances
    assert value(result, "00081190") == f"{world.server.dicomweb}/studies/{world.studies['A'].uid}"


def test_includefield_adds_attributes(world, client):
    plain = client.search_for_studies(search_filters={"PatientID": "PID-C"})
    assert len(plain) == 1
    (extended,) = client.search_for_studies(
        search_filters={"PatientID": "PID-C"}, fields=["StudyDescription", "InstitutionName"]
    )
    assert value(extended, "00081030") == "CR KNEE"
    assert value(extended, "00080080") == "Interop General Hospital"


def test_includefield_all_at_instance_level(world, client):
    ds = world.studies["C"].instances[0]
    (result,) = client.search_for_instances(
        study_instance_uid=ds.StudyInstanceUID, fields=["all"]
    )
    assert value(result, SOP_UID) == ds.SOPInstanceUID
    assert value(result, "00280010") == 10  # Rows
    assert value(result, "00280011") == 20  # Columns


def test_limit_and_offset_page_through_studies(world, client):
    everything = uids(client.search_for_studies(), STUDY_UID)
    assert len(everything) == 3
    pages = [client.search_for_studies(limit=2, offset=offset) for offset in (0, 2, 4)]
    assert [len(p) for p in pages] == [2, 1, 0]
    seen = [value(r, STUDY_UID) for page in pages for r in page]
    assert sorted(seen) == sorted(everything), "pages overlap or miss a study"
    assert len(client.search_for_studies(limit=1)) == 1


def test_search_for_series(world, client):
    a = world.studies["A"]
    results = client.search_for_series(study_instance_uid=a.uid)
    assert uids(results, SERIES_UID) == set(a.series_uids())
    assert {value(r, "00080060") for r in results} == {"CT", "OT"}
    counts = {value(r, "00080060"): value(r, "00201209") for r in results}
    assert counts == {"CT": 3, "OT": 1}  # NumberOfSeriesRelatedInstances

    mr = client.search_for_series(search_filters={"Modality": "MR"})
    assert uids(mr, SERIES_UID) == set(world.studies["B"].series_uids())
    assert client.search_for_series(search_filters={"Modality": "MR", "PatientID": "PID-A"}) == []


def test_search_for_instances(world, client):
    a = world.studies["A"]
    ct = [ds for ds in a.instances if ds.Modality == "CT"]
    series = ct[0].SeriesInstanceUID
    results = client.search_for_instances(study_instance_uid=a.uid, series_instance_uid=series)
    assert uids(results, SOP_UID) == {ds.SOPInstanceUID for ds in ct}
    assert {value(r, "00080016") for r in results} == {CT_IMAGE}

    in_study = client.search_for_instances(study_instance_uid=a.uid)
    assert uids(in_study, SOP_UID) == {ds.SOPInstanceUID for ds in a.instances}

    by_patient = client.search_for_instances(search_filters={"PatientName": "SMITH*"})
    assert uids(by_patient, SOP_UID) == {world.studies["C"].instances[0].SOPInstanceUID}

    by_number = client.search_for_instances(
        study_instance_uid=a.uid, search_filters={"InstanceNumber": "2"}
    )
    assert uids(by_number, SOP_UID) == {ct[1].SOPInstanceUID}


# ---- WADO: instances ----------------------------------------------------------------------


def test_retrieve_study_gives_back_what_was_stored(world, client):
    for study in world.studies.values():
        got = client.retrieve_study(study.uid)
        assert {ds.SOPInstanceUID for ds in got} == {ds.SOPInstanceUID for ds in study.instances}
        sent = {ds.SOPInstanceUID: ds for ds in study.instances}
        for ds in got:
            assert ds == sent[ds.SOPInstanceUID]
            assert ds.PixelData == sent[ds.SOPInstanceUID].PixelData


def test_retrieve_series_and_instance(world, client):
    a = world.studies["A"]
    for series in a.series_uids():
        got = client.retrieve_series(a.uid, series)
        assert sorted(ds.SOPInstanceUID for ds in got) == sorted(
            ds.SOPInstanceUID for ds in a.in_series(series)
        )
    b = world.studies["B"].instances[0]
    got = client.retrieve_instance(b.StudyInstanceUID, b.SeriesInstanceUID, b.SOPInstanceUID)
    assert got == b
    assert np.array_equal(got.pixel_array, b.pixel_array)


@pytest.mark.parametrize("level", ["study", "series", "instance"])
def test_raw_retrieve_is_byte_identical(world, level):
    a = world.studies["A"]
    ct = a.instances[0]
    path = f"/studies/{a.uid}"
    expected = set(world.raw)
    if level in ("series", "instance"):
        path += f"/series/{ct.SeriesInstanceUID}"
        expected = {ds.SOPInstanceUID for ds in a.in_series(ct.SeriesInstanceUID)}
    if level == "instance":
        path += f"/instances/{ct.SOPInstanceUID}"
        expected = {ct.SOPInstanceUID}
    response = world.server.get(world.key, path, accept=ANY_DICOM)
    assert response.status_code == 200, response.text
    parts = parse_multipart(response)
    got = {}
    for headers, body in parts:
        assert headers["content-type"].startswith("application/dicom")
        ds = pydicom.dcmread(io.BytesIO(body))
        got[ds.SOPInstanceUID] = body
    assert set(got) == expected
    for sop, body in got.items():
        assert body == world.raw[sop], f"instance {sop} differs from the bytes sent"


# ---- WADO: metadata -----------------------------------------------------------------------


def test_metadata_at_every_level(world, client):
    a = world.studies["A"]
    study = client.retrieve_study_metadata(a.uid)
    assert uids(study, SOP_UID) == set(world.raw)
    for item in study:
        assert value(item, "00100010") == {"Alphabetic": "DOE^JOHN"}
        assert value(item, STUDY_UID) == a.uid
        pixel = item["7FE00010"]
        assert "InlineBinary" not in pixel, "pixel data belongs in bulk data, not in metadata"
        assert pixel.get("BulkDataURI", "").startswith(world.server.dicomweb + "/")

    ct = a.instances[0]
    series = client.retrieve_series_metadata(a.uid, ct.SeriesInstanceUID)
    assert uids(series, SOP_UID) == {ds.SOPInstanceUID for ds in a.in_series(ct.SeriesInstanceUID)}

    one = client.retrieve_instance_metadata(a.uid, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    ds = Dataset.from_json({k: v for k, v in one.items() if k != "7FE00010"})
    assert ds.SOPInstanceUID == ct.SOPInstanceUID
    assert ds.Rows == 32 and ds.Columns == 32
    assert ds.InstitutionName == "Interop General Hospital"


# ---- WADO: frames and rendered ------------------------------------------------------------


def test_frames_uncompressed(world, client):
    mr = world.studies["B"].instances[0]
    frames = client.retrieve_instance_frames(
        mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID,
        frame_numbers=[2, 4], media_types=("application/octet-stream",),
    )
    assert frames == [frame_bytes(mr, 2), frame_bytes(mr, 4)]

    rgb = next(ds for ds in world.studies["A"].instances if ds.Modality == "OT")
    (frame,) = client.retrieve_instance_frames(
        rgb.StudyInstanceUID, rgb.SeriesInstanceUID, rgb.SOPInstanceUID,
        frame_numbers=[1], media_types=("application/octet-stream",),
    )
    assert frame == frame_bytes(rgb, 1)


def test_frame_beyond_the_last_is_not_found(world, client):
    mr = world.studies["B"].instances[0]
    with pytest.raises(requests.HTTPError) as error:
        client.retrieve_instance_frames(
            mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID,
            frame_numbers=[5], media_types=("application/octet-stream",),
        )
    assert error.value.response.status_code == 404


def open_image(data: bytes, fmt: str) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    image.load()
    assert image.format == fmt
    return np.asarray(image)


def test_rendered_frames(world, client):
    mr = world.studies["B"].instances[0]
    ids = (mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    window = {"window": "2000,5000"}
    first = open_image(client.retrieve_instance_frames_rendered(
        *ids, frame_numbers=[1], media_types=("image/png",), params=window), "PNG")
    third = open_image(client.retrieve_instance_frames_rendered(
        *ids, frame_numbers=[3], media_types=("image/png",), params=window), "PNG")
    assert first.shape[:2] == (16, 16) and third.shape[:2] == (16, 16)
    assert third.mean() > first.mean(), "frame 3 holds larger values than frame 1"

    jpeg = open_image(client.retrieve_instance_rendered(*ids, media_types=("image/jpeg",)), "JPEG")
    assert jpeg.shape[:2] == (16, 16)


@pytest.mark.parametrize(
    "window, expected",
    [("-1000,1", 255), ("100000,1", 0)],
    ids=["everything-above-the-window", "everything-below-the-window"],
)
def test_rendered_window(world, client, window, expected):
    ct = world.studies["A"].instances[0]
    png = client.retrieve_instance_rendered(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID,
        media_types=("image/png",), params={"window": window},
    )
    pixels = open_image(png, "PNG")
    assert pixels.shape[:2] == (32, 32)
    assert np.all(pixels == expected)


def test_rendered_default_window_shows_the_gradient(world, client):
    ct = world.studies["A"].instances[0]
    pixels = open_image(client.retrieve_instance_rendered(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID, media_types=("image/png",)),
        "PNG")
    assert len(np.unique(pixels)) > 16


@pytest.mark.parametrize(
    "study, viewport, size",
    [("A", "16,16", (16, 16)), ("C", "10,10", (10, 5)), ("C", "40,40", (40, 20))],
    ids=["square", "wide-keeps-aspect", "wide-upscaled"],
)
def test_rendered_viewport(world, client, study, viewport, size):
    ds = world.studies[study].instances[0]
    png = client.retrieve_instance_rendered(
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
        media_types=("image/png",), params={"viewport": viewport},
    )
    image = Image.open(io.BytesIO(png))
    assert image.size == size


def test_study_thumbnail(world):
    response = world.server.get(world.key, f"/studies/{world.studies['A'].uid}/thumbnail",
                                accept="image/jpeg")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "image/jpeg"
    open_image(response.content, "JPEG")


# ---- credentials and organizations ----------------------------------------------------------


def test_basic_auth_works_like_bearer(world):
    bearer, basic = world.client(), world.client(basic=True)
    assert uids(basic.search_for_studies(), STUDY_UID) == uids(bearer.search_for_studies(), STUDY_UID)
    c = world.studies["C"].instances[0]
    assert basic.retrieve_instance(c.StudyInstanceUID, c.SeriesInstanceUID, c.SOPInstanceUID) == c


def wrong_keys(key: str) -> dict[str, dict]:
    key_id, secret = key.split(".", 1)
    flipped = ("A" if secret[0] != "A" else "B") + secret[1:]
    return {
        "no-credential": {},
        "wrong-secret": {"Authorization": f"Bearer {key_id}.{flipped}"},
        "unknown-key-id": {"Authorization": f"Bearer cfk0000000000000000.{secret}"},
        "not-a-key": {"Authorization": "Bearer hello"},
        "basic-wrong-password": {"Authorization": requests.auth._basic_auth_str(key_id, f"{key_id}.{flipped}")},
        "basic-user-not-the-key-id": {"Authorization": requests.auth._basic_auth_str("someone", key)},
    }


@pytest.mark.parametrize("variant", list(wrong_keys("k.s")))
def test_wrong_credentials_get_401(world, variant):
    headers = wrong_keys(world.key)[variant]
    client = DICOMwebClient(url=world.server.dicomweb, session=session_for(None), headers=headers)
    client.set_http_retry_params(retry=False)
    with pytest.raises(requests.HTTPError) as error:
        client.search_for_studies()
    assert error.value.response.status_code == 401
    a = world.studies["A"]
    with pytest.raises(requests.HTTPError) as error:
        client.retrieve_study(a.uid)
    assert error.value.response.status_code == 401


def test_revoked_key_gets_401(world):
    key = world.server.create_key("H1")
    client = world.client(key)
    assert len(client.search_for_studies()) == 3
    world.server.revoke_key(key)
    with pytest.raises(requests.HTTPError) as error:
        client.search_for_studies()
    assert error.value.response.status_code == 401


def test_another_organization_sees_nothing(world):
    other = world.client(world.other_key)
    assert other.search_for_studies() == []
    assert other.search_for_studies(search_filters={"PatientID": "PID-A"}) == []
    assert other.search_for_series() == []
    assert other.search_for_instances() == []
    a = world.studies["A"]
    ct = a.instances[0]
    assert other.search_for_series(study_instance_uid=a.uid) == []
    assert other.search_for_instances(study_instance_uid=a.uid) == []
    ids = (a.uid, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    attempts = {
        "study": lambda: other.retrieve_study(a.uid),
        "series": lambda: other.retrieve_series(*ids[:2]),
        "instance": lambda: other.retrieve_instance(*ids),
        "study metadata": lambda: other.retrieve_study_metadata(a.uid),
        "instance metadata": lambda: other.retrieve_instance_metadata(*ids),
        "frames": lambda: other.retrieve_instance_frames(
            *ids, frame_numbers=[1], media_types=("application/octet-stream",)),
        "rendered": lambda: other.retrieve_instance_rendered(*ids, media_types=("image/png",)),
    }
    for what, attempt in attempts.items():
        with pytest.raises(requests.HTTPError) as error:
            attempt()
        assert error.value.response.status_code == 404, what
    thumbnail = world.server.get(world.other_key, f"/studies/{a.uid}/thumbnail", accept="image/jpeg")
    assert thumbnail.status_code == 404


def test_another_organization_may_store_the_same_instances(world):
    """SOP Instance UIDs are unique per organization: H3 stores study A's very bytes."""
    world.server.create_org("H3", "Hospital Three")
    key = world.server.create_key("H3")
    response = world.server.stow(key, list(world.raw.values()))
    assert response.status_code == 200, response.text
    a = world.studies["A"]
    mine = world.client(key)
    assert uids(mine.search_for_studies(), STUDY_UID) == {a.uid}
    assert {ds.SOPInstanceUID for ds in mine.retrieve_study(a.uid)} == set(world.raw)
    # H1 still sees its own three studies, and H2 still nothing.
    assert len(world.client().search_for_studies()) == 3
    assert world.client(world.other_key).search_for_studies() == []
