"""Frames asked with `transfer-syntax=*` go out as stored: a compressed frame is sent in its
own syntax (labelled so), byte for byte, not decoded to many times its size."""

from __future__ import annotations

from pathlib import Path

import pydicom
import pytest
from pydicom.encaps import generate_frames

from conftest import parse_multipart

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"
OCTETS_ANY = 'multipart/related; type="application/octet-stream"; transfer-syntax=*'
OCTETS = 'multipart/related; type="application/octet-stream"'


@pytest.fixture(scope="module")
def server(cloudfilm_factory):
    server = cloudfilm_factory({"F": "Frames"})
    server.key = server.create_key("F")
    return server


@pytest.mark.parametrize("sample", ["JPEG2000.dcm", "SC_rgb_jpeg_dcmtk.dcm", "MR_small_RLE.dcm"])
def test_any_transfer_syntax_means_as_stored(server, sample):
    ds = pydicom.dcmread(TEST_FILES / sample)
    assert server.stow(server.key, [(TEST_FILES / sample).read_bytes()]).status_code == 200
    path = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}/frames/1"
    stored = next(generate_frames(ds.PixelData, number_of_frames=int(ds.get("NumberOfFrames", 1))))

    response = server.get(server.key, path, accept=OCTETS_ANY)
    assert response.status_code == 200, response.text[:200]
    [(headers, body)] = parse_multipart(response)
    assert body == stored, (len(body), len(stored))
    assert f"transfer-syntax={ds.file_meta.TransferSyntaxUID}" in headers.get("content-type", "") + response.headers["Content-Type"]

    # Without the parameter (explicit VR little endian by default) the frame is decoded.
    response = server.get(server.key, path, accept=OCTETS)
    assert response.status_code == 200
    [(_, decoded)] = parse_multipart(response)
    assert len(decoded) == ds.Rows * ds.Columns * ds.SamplesPerPixel * ds.BitsAllocated // 8


@pytest.mark.parametrize("sample", ["JPEG2000.dcm", "MR_small_RLE.dcm", "image_dfl.dcm"])
def test_instances_in_an_uncompressed_syntax_asked_by_name(server, sample):
    from dicomweb_client.api import DICOMwebClient
    from conftest import session_for

    ds = pydicom.dcmread(TEST_FILES / sample)
    response = server.stow(server.key, [(TEST_FILES / sample).read_bytes()])
    assert response.status_code in (200, 409)  # 409: stored by the test above already
    client = DICOMwebClient(url=server.dicomweb, session=session_for(None),
                            headers={"Authorization": f"Bearer {server.key}"})
    got = client.retrieve_instance(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID,
                                   media_types=(("application/dicom", "1.2.840.10008.1.2.1"),))
    assert got.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.1"
    assert got.SOPInstanceUID == ds.SOPInstanceUID
    assert (got.pixel_array == ds.pixel_array).all()

    # A compressed syntax other than the stored one is not produced.
    path = f"/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}/instances/{ds.SOPInstanceUID}"
    refused = server.get(server.key, path,
                         accept='multipart/related; type="application/dicom"; transfer-syntax=1.2.840.10008.1.2.4.80')
    assert refused.status_code == 406
