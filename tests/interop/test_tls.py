"""TLS on every listener (issue 18 item 1): HTTPS with HTTP/2 and HTTP/1.1, TLS 1.2+ only, the
patient flow with `__Host-` Secure cookies and HSTS, links built as https; DIMSE over TLS with
DCMTK's own OpenSSL client (`--anonymous-tls`, trusting the server's certificate); plain
clients refused on both TLS ports; an expired certificate replaced on disk and reloaded with
SIGHUP, without a restart; `demo --tls` making its own certificate, used by curl and
python-requests. Certificates are made here with `cryptography`.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import re
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydicom import dcmread
from pydicom.data import get_testdata_file

from conftest import BIN, HTTP_TIMEOUT, _env
from test_share_download import make_world

TOOL_TIMEOUT = 60
RELOAD_TIMEOUT = 10  # seconds for a reloaded certificate to be presented


def make_certificate(directory: Path, days_from: int = -1, days_to: int = 30) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, valid from/to days from now."""
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cloudfilm test")])
    now = datetime.datetime.now(datetime.timezone.utc)

    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=days_from))
        .not_valid_after(now + datetime.timedelta(days=days_to))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost"),
                                                    x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                       critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def fingerprint(cert_path: Path) -> str:
    der = x509.load_pem_x509_certificate(cert_path.read_bytes()).public_bytes(serialization.Encoding.DER)
    return ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest())


def tls_env(cert: Path, key: Path) -> dict:
    return {"CLOUDFILM_HTTP__TLS_CERT": str(cert), "CLOUDFILM_HTTP__TLS_KEY": str(key),
            "CLOUDFILM_DIMSE__TLS_LISTEN": "127.0.0.1:0", "CLOUDFILM_HTTP__METRICS_LISTEN": "127.0.0.1:0"}


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_world(cloudfilm_factory, tmp_path_factory, certificate):
    """The patient world of the share tests, served over HTTPS only."""
    cert, key = certificate
    previous = os.environ.get("CLOUDFILM_TEST_CA_BUNDLE")
    os.environ["CLOUDFILM_TEST_CA_BUNDLE"] = str(cert)  # the sessions of conftest trust it
    try:
        yield make_world(lambda orgs, env: cloudfilm_factory(orgs, env={**env, **tls_env(cert, key)}),
                         tmp_path_factory.mktemp("tls-world"))
    finally:
        if previous is None:
            os.environ.pop("CLOUDFILM_TEST_CA_BUNDLE", None)
        else:
            os.environ["CLOUDFILM_TEST_CA_BUNDLE"] = previous


def curl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["curl", "-sS", "--max-time", "30", *args], capture_output=True, text=True,
                          timeout=TOOL_TIMEOUT)


def test_the_patient_flow_runs_over_https_with_host_only_secure_cookies(tls_world):
    server, patient = tls_world.server, tls_world.patient
    assert server.url.startswith("https://127.0.0.1:"), server.url
    # make_world logged in, added the patient and matched the exam over HTTPS.
    names = {c.name: c for c in patient.http.cookies}
    assert "__Host-cf_session" in names and "__Host-cf_csrf" in names, sorted(names)
    assert all(c.secure for c in names.values()), "a cookie without Secure over HTTPS"
    r = patient.get("/api/v1/me")
    assert r.status_code == 200, r.text
    assert r.headers.get("Strict-Transport-Security", "").startswith("max-age="), r.headers
    share = patient.create_share(tls_world.exam, deidentified=False)
    assert share["url"].startswith(server.url + "/s/"), share["url"]


def test_curl_speaks_http2_and_http11_and_older_tls_is_refused(tls_world, certificate):
    url = tls_world.server.url + "/healthz"
    cert, _ = certificate
    h2 = curl("--cacert", str(cert), "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url)
    assert h2.stdout == "200 2", (h2.stdout, h2.stderr)
    h1 = curl("--http1.1", "--cacert", str(cert), "-o", "/dev/null", "-w", "%{http_code} %{http_version}", url)
    assert h1.stdout == "200 1.1", (h1.stdout, h1.stderr)
    old = curl("--tls-max", "1.1", "--cacert", str(cert), "-o", "/dev/null", url)
    assert old.returncode != 0, "TLS 1.1 was accepted"
    untrusted = curl("-o", "/dev/null", url)
    assert untrusted.returncode != 0, "curl accepted the certificate without being told to trust it"


def plain_text_answer(port: int, payload: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(payload)
        chunks = b""
        try:
            while len(chunks) < 4096:
                chunk = s.recv(4096)
                if not chunk:
                    break
                chunks += chunk
        except (ConnectionResetError, socket.timeout):
            pass
        return chunks


def test_plain_clients_are_refused_on_the_tls_ports(tls_world):
    server = tls_world.server
    port = int(server.url.rsplit(":", 1)[1])
    answer = plain_text_answer(port, b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert not answer.startswith(b"HTTP/"), answer[:200]
    assert server.dimse_tls_port, "no DIMSE TLS line in the banner"
    echo = subprocess.run(["/usr/bin/echoscu", "-aet", "TLS_SCU", "-aec", "CLOUDFILM", "127.0.0.1",
                           str(server.dimse_tls_port)], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert echo.returncode != 0, echo.stdout + echo.stderr
    assert server.metrics_url and server.metrics_url.startswith("https://"), server.metrics_url
    metrics_port = int(server.metrics_url.rsplit(":", 1)[1].split("/")[0])
    answer = plain_text_answer(metrics_port, b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert not answer.startswith(b"HTTP/"), answer[:200]


def test_the_metrics_listener_speaks_https_with_the_same_certificate(tls_world, certificate):
    cert, _ = certificate
    scraped = curl("--cacert", str(cert), "-w", "\n%{http_code}", tls_world.server.metrics_url)
    assert scraped.stdout.endswith("\n200") and "cloudfilm_" in scraped.stdout, (scraped.stdout[-300:], scraped.stderr)


def test_dcmtk_stores_and_finds_over_dimse_tls(tls_world, certificate):
    server = tls_world.server
    cert, _ = certificate
    server.add_ae("H1", "TLS_SCU")
    tls = ["--anonymous-tls", "+cf", str(cert)]
    target = ["-aet", "TLS_SCU", "-aec", "CLOUDFILM", "127.0.0.1", str(server.dimse_tls_port)]
    echo = subprocess.run(["/usr/bin/echoscu", *tls, *target], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert echo.returncode == 0, echo.stdout + echo.stderr
    sample = get_testdata_file("MR_small.dcm")
    store = subprocess.run(["/usr/bin/storescu", *tls, *target, sample], capture_output=True, text=True,
                           timeout=TOOL_TIMEOUT)
    assert store.returncode == 0, store.stdout + store.stderr
    find = subprocess.run(["/usr/bin/findscu", *tls, "-S", "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID",
                           "-k", "PatientID", *target], capture_output=True, text=True, timeout=TOOL_TIMEOUT)
    assert find.returncode == 0, find.stdout + find.stderr
    uid = dcmread(sample).StudyInstanceUID
    assert uid in find.stdout + find.stderr, (find.stdout + find.stderr)[-2000:]


def test_a_node_bound_to_its_client_certificate_is_accepted_only_with_it(tls_world, certificate, tmp_path):
    """`org ae add --certificate`: the node's own certificate (self-signed, as modalities' are)
    over DIMSE TLS is accepted; the same AE title with no certificate, another certificate or on
    the plain port is rejected (A-ASSOCIATE-RJ, audited); DCMTK's `+tls KEY CERT` is the client."""
    server = tls_world.server
    cert, _ = certificate
    node_cert, node_key = make_certificate(tmp_path / "node")
    other_cert, other_key = make_certificate(tmp_path / "other")
    server.add_ae("H1", "PINNED_SCU", certificate=node_cert)
    listed = server.cli("org", "ae", "list", "H1").stdout
    pin = fingerprint(node_cert).replace(":", "").lower()
    assert f"PINNED_SCU\tany host\t-\t{pin}" in listed, listed
    target = ["-aet", "PINNED_SCU", "-aec", "CLOUDFILM", "127.0.0.1", str(server.dimse_tls_port)]
    sample = get_testdata_file("CT_small.dcm")

    def store(*tls: str, port_target: list[str] = target) -> subprocess.CompletedProcess:
        return subprocess.run(["/usr/bin/storescu", *tls, *port_target, sample], capture_output=True, text=True,
                              timeout=TOOL_TIMEOUT)

    bound = store("+tls", str(node_key), str(node_cert), "+cf", str(cert))
    assert bound.returncode == 0, bound.stdout + bound.stderr
    for refused in (store("--anonymous-tls", "+cf", str(cert)),
                    store("+tls", str(other_key), str(other_cert), "+cf", str(cert)),
                    store(port_target=[*target[:-1], str(server.dimse_port)])):
        assert refused.returncode != 0, refused.stdout + refused.stderr
        assert "Association Rejected" in refused.stdout + refused.stderr, refused.stdout + refused.stderr
    exported = server.cli("audit", "export").stdout.splitlines()
    alerts = [line for line in exported if "bound to a TLS client certificate" in line]
    assert len(alerts) >= 1, "the refusals are audited"


def test_an_expired_certificate_is_replaced_with_sighup(cloudfilm_factory, tmp_path):
    cert, key = make_certificate(tmp_path / "tls", days_from=-30, days_to=-1)
    expired_print = fingerprint(cert)
    server = cloudfilm_factory(env={"CLOUDFILM_HTTP__TLS_CERT": str(cert), "CLOUDFILM_HTTP__TLS_KEY": str(key)})
    url = server.url + "/healthz"
    with pytest.raises(requests.exceptions.SSLError, match="expired"):
        requests.get(url, verify=str(cert), timeout=HTTP_TIMEOUT)
    fresh_dir = tmp_path / "fresh"
    fresh_cert, fresh_key = make_certificate(fresh_dir)
    # Replaced as a renewal tool would: the new files moved over the old ones.
    os.replace(fresh_key, key)
    os.replace(fresh_cert, cert)
    assert fingerprint(cert) != expired_print
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while True:
        try:
            r = requests.get(url, verify=str(cert), timeout=HTTP_TIMEOUT)
            break
        except requests.exceptions.SSLError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    assert r.status_code == 200
    presented = ssl.get_server_certificate(("127.0.0.1", int(server.url.rsplit(":", 1)[1])))
    der = ssl.PEM_cert_to_DER_cert(presented)
    assert ":".join(f"{b:02X}" for b in hashlib.sha256(der).digest()) == fingerprint(cert)
    assert server.proc.poll() is None, "the server stopped on SIGHUP"


def test_a_broken_reload_keeps_the_certificate_in_use(cloudfilm_factory, tmp_path):
    cert, key = make_certificate(tmp_path / "tls")
    server = cloudfilm_factory(env={"CLOUDFILM_HTTP__TLS_CERT": str(cert), "CLOUDFILM_HTTP__TLS_KEY": str(key)})
    good = cert.read_bytes()
    saved = tmp_path / "saved.pem"
    saved.write_bytes(good)
    cert.write_text("not a certificate\n")
    os.kill(server.proc.pid, signal.SIGHUP)
    # The reload was tried and refused (the server says so), not merely not yet done.
    deadline = time.monotonic() + RELOAD_TIMEOUT
    while "TLS certificate not reloaded" not in server.stderr_tail(100_000):
        assert time.monotonic() < deadline, f"no word of the refused reload: {server.stderr_tail()}"
        time.sleep(0.1)
    r = requests.get(server.url + "/healthz", verify=str(saved), timeout=HTTP_TIMEOUT)
    assert r.status_code == 200
    assert server.proc.poll() is None


def test_demo_tls_makes_a_certificate_that_curl_and_requests_trust(tmp_path):
    data = tmp_path / "demo"
    proc = subprocess.Popen([BIN, "demo", "--tls", "--data", str(data), "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0",
                             "--scale", "0.02"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                            env=_env({}))
    try:
        banner = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(line.startswith("Sample studies") for line in banner):
            line = proc.stdout.readline()
            if not line:
                break
            banner.append(line.strip())
        text = "\n".join(banner)
        url = re.search(r"^URL:\s+(https://127\.0\.0\.1:\d+)/", text, re.M)
        printed = re.search(r"SHA-256 ([0-9A-F:]{95})", text)
        assert url and printed, text
        cert = data / "tls" / "cert.pem"
        assert printed.group(1) == fingerprint(cert), "the printed fingerprint is not the certificate's"
        assert oct((data / "tls" / "key.pem").stat().st_mode & 0o777) == "0o600"
        r = requests.get(url.group(1) + "/healthz", verify=str(cert), timeout=HTTP_TIMEOUT)
        assert r.status_code == 200
        c = curl("--cacert", str(cert), "-o", "/dev/null", "-w", "%{http_code}",
                 url.group(1).replace("127.0.0.1", "localhost") + "/healthz")
        assert c.stdout == "200", (c.stdout, c.stderr)
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
