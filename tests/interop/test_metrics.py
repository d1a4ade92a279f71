"""What an operator watches, read as Prometheus reads it: `--metrics` opens a listener of its
own whose `/metrics` page the official text-format parser (`prometheus_client.parser`) reads,
and whose counters move after a STOW-RS (dicomweb-client), a QIDO-RS, a rendered frame, a
C-STORE (DCMTK's storescu) and a sign-in code; `/readyz` on the main listener; and the JSON
log (`--log-format json`, one object a line carrying the request id). Neither the metrics nor
the log hold any of the patient's values.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pydicom
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from prometheus_client.parser import text_string_to_metric_families
from pydicom.uid import generate_uid

from conftest import HTTP_TIMEOUT

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # local only: never downloads
STORESCU = "/usr/bin/storescu"  # DCMTK's, by full path (pynetdicom puts its own on PATH)
SCU = "METRICS_SCU"

PHONE = "13800138000"
NAME = "ZHANG^SAN"
PATIENT_ID = "MRN-METRICS-0042"
ACCESSION = "ACCMETRICS01"
RESIDENT_ID = "11010519491231002X"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> tuple[str, Samples]:
    response = requests.get(url, timeout=HTTP_TIMEOUT)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain"), response.headers
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return response.text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def instance(path: Path, study: str) -> pydicom.Dataset:
    """A sample CT of pydicom's, made the patient's: her name, IDs and accession, new UIDs."""
    ds = pydicom.dcmread(path)
    ds.PatientName = NAME
    ds.PatientID = PATIENT_ID
    ds.OtherPatientIDs = RESIDENT_ID
    ds.AccessionNumber = ACCESSION
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


@pytest.fixture(scope="module")
def server(cloudfilm_factory, tmp_path_factory):
    outbox = tmp_path_factory.mktemp("sms") / "outbox.jsonl"
    env = {
        "CLOUDFILM_HTTP__METRICS_LISTEN": "127.0.0.1:0",
        "CLOUDFILM_PATIENTS__SMS": f"file:{outbox}",
        "CLOUDFILM_LOG_FORMAT": "json",
    }
    server = cloudfilm_factory({"H1": "Metrics Hospital"}, env=env)
    assert server.metrics_url, "the banner names no metrics listener"
    server.add_ae("H1", SCU)
    return server


def test_counters_move_with_stow_qido_render_cstore_and_codes(server, tmp_path):
    key = server.create_key("H1")
    _, before = scrape(server.metrics_url)

    study = generate_uid()
    stowed = instance(TEST_FILES / "CT_small.dcm", study)
    client = DICOMwebClient(server.dicomweb, headers={"Authorization": f"Bearer {key}"})
    client.store_instances([stowed])
    found = client.search_for_studies(search_filters={"PatientName": "ZHANG*"})
    assert [s["0020000D"]["Value"][0] for s in found] == [study]
    rendered = server.get(
        key,
        f"/studies/{study}/series/{stowed.SeriesInstanceUID}/instances/{stowed.SOPInstanceUID}/rendered",
        accept="image/jpeg",
    )
    assert rendered.status_code == 200, rendered.text

    stored = instance(TEST_FILES / "CT_small.dcm", study)
    path = tmp_path / "stored.dcm"
    stored.save_as(path)
    sent = subprocess.run(
        [STORESCU, "-aet", SCU, "-aec", server.dimse_ae, "127.0.0.1", str(server.dimse_port), str(path)],
        capture_output=True, text=True, timeout=60,
    )
    assert sent.returncode == 0, sent.stderr

    code = requests.post(f"{server.url}/api/v1/auth/otp", json={"phone": PHONE}, timeout=HTTP_TIMEOUT)
    assert code.status_code == 202, code.text

    text, after = scrape(server.metrics_url)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    requests_total = "cloudfilm_http_requests_total"
    assert moved(requests_total, method="POST", route="/dicom-web/studies", status="200") == 1
    assert moved(requests_total, method="GET", route="/dicom-web/studies", status="200") == 1
    rendered_route = "/dicom-web/studies/{study}/series/{series}/instances/{sop}/rendered"
    assert moved(requests_total, method="GET", route=rendered_route, status="200") == 1
    assert moved(requests_total, method="POST", route="/api/v1/auth/otp", status="202") == 1
    assert moved("cloudfilm_http_request_duration_seconds_count", method="POST", route="/dicom-web/studies") == 1
    assert value(after, "cloudfilm_http_request_duration_seconds_bucket",
                 method="POST", route="/dicom-web/studies", le="+Inf") >= 1

    assert moved("cloudfilm_ingest_instances_total", interface="stow-rs", outcome="stored") == 1
    assert moved("cloudfilm_ingest_instances_total", interface="c-store", outcome="stored") == 1
    size = (TEST_FILES / "CT_small.dcm").stat().st_size
    assert moved("cloudfilm_ingest_bytes_total", interface="stow-rs") > size / 2

    assert moved("cloudfilm_dimse_associations_total", outcome="accepted") == 1
    assert moved("cloudfilm_dimse_operations_total", operation="C-STORE", outcome="success") == 1
    assert moved("cloudfilm_rendered_frames_total", outcome="success") == 1
    assert moved("cloudfilm_render_duration_seconds_count") == 1
    assert moved("cloudfilm_sms_total", kind="login_code", outcome="sent") == 1

    # States read at each scrape: the chain grew; the pool is there.
    assert value(after, "cloudfilm_audit_entries") > value(before, "cloudfilm_audit_entries") > 0
    assert ("cloudfilm_db_pool_connections", (("state", "idle"),)) in after
    assert [v for (name, _), v in after.items() if name == "cloudfilm_build_info"] == [1.0]

    # No route is a raw path, and nothing of the patient's is anywhere in the page.
    for (name, labels), _ in after.items():
        route = dict(labels).get("route")
        assert route is None or route == "unmatched" or study not in route, route
    for secret in [NAME, "ZHANG", PATIENT_ID, ACCESSION, RESIDENT_ID, PHONE, study,
                   stowed.SOPInstanceUID, stored.SOPInstanceUID, key, key.split(".")[0]]:
        assert secret not in text, f"{secret!r} is in /metrics"


def test_an_unknown_path_is_one_label_and_metrics_stay_off_the_main_listener(server):
    _, before = scrape(server.metrics_url)
    for n in range(3):
        assert requests.get(f"{server.url}/no/such/{PATIENT_ID}/{n}", timeout=HTTP_TIMEOUT).status_code == 404
    assert requests.get(f"{server.url}/metrics", timeout=HTTP_TIMEOUT).status_code == 404
    text, after = scrape(server.metrics_url)
    moved = value(after, "cloudfilm_http_requests_total", method="GET", route="unmatched", status="404") - value(
        before, "cloudfilm_http_requests_total", method="GET", route="unmatched", status="404")
    assert moved == 4
    assert PATIENT_ID not in text and "/no/such" not in text
    other = requests.get(server.metrics_url.replace("/metrics", "/healthz"), timeout=HTTP_TIMEOUT)
    assert other.status_code == 404, "the metrics listener serves /metrics only"


def test_readyz_says_the_node_takes_traffic(server):
    ready = requests.get(f"{server.url}/readyz", timeout=HTTP_TIMEOUT)
    assert ready.status_code == 200
    assert ready.json() == {"ready": True}


def test_the_json_log_has_a_request_id_on_every_request_and_no_personal_values(server):
    key = server.create_key("H1")
    response = server.get(key, f"/studies?PatientName={NAME}&PatientID={PATIENT_ID}")
    assert response.status_code == 200
    request_id = response.headers["x-request-id"]
    log = server.data_dir.parent / "server.stderr.log"
    deadline = time.monotonic() + 10
    while request_id not in log.read_text(errors="replace") and time.monotonic() < deadline:
        time.sleep(0.1)
    lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    mine = [e for e in entries if e.get("fields", {}).get("request_id") == request_id]
    assert len(mine) == 1, mine
    assert mine[0]["fields"]["path"] == "/dicom-web/studies"
    assert mine[0]["fields"]["status"] == 200
    assert all("level" in e and "timestamp" in e for e in entries)
    text = "\n".join(lines)
    for secret in [NAME, "ZHANG", PATIENT_ID, ACCESSION, RESIDENT_ID, PHONE, key]:
        assert secret not in text, f"{secret!r} is in the log"
