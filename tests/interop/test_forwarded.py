"""Behind a reverse proxy (issue 18 item 2): `X-Forwarded-For` / `Forwarded` are believed only
from `--trusted-proxy` networks (here `CLOUDFILM_HTTP__TRUSTED_PROXIES`); the client the archive
counts is then the first untrusted hop. The same requests, sent by python-requests from
127.0.0.1, go to one server that trusts loopback as its proxy and one that trusts another
network: per-address limits, API key allowlists, links built for the client and the audit
follow the forwarded address only on the first.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import requests
from pydicom.data import get_testdata_file

from conftest import HTTP_TIMEOUT

LINK_FAILURES_PER_HOUR = 30  # from one address, over all links (as the share tests use)


@pytest.fixture(scope="module")
def behind_proxy(cloudfilm_factory):
    return cloudfilm_factory({"PROXY": "Hospital behind a proxy"},
                             env={"CLOUDFILM_HTTP__TRUSTED_PROXIES": "10.9.0.0/16,127.0.0.1"})


@pytest.fixture(scope="module")
def not_behind_proxy(cloudfilm_factory):
    return cloudfilm_factory({"DIRECT": "Hospital reached directly"},
                             env={"CLOUDFILM_HTTP__TRUSTED_PROXIES": "10.9.0.0/16"})


def unknown_link(server, forwarded_for: str) -> requests.Response:
    """A download link that does not exist: one link failure for the client's address."""
    return requests.post(f"{server.url}/api/v1/downloads/{secrets.token_urlsafe(32)}", json={"code": "123456"},
                         headers={"X-Forwarded-For": forwarded_for}, timeout=HTTP_TIMEOUT)


def test_limits_count_the_forwarded_client_behind_a_trusted_proxy(behind_proxy):
    for n in range(LINK_FAILURES_PER_HOUR):
        r = unknown_link(behind_proxy, "198.51.100.1")
        assert r.status_code == 404, (n, r.status_code, r.text)
    r = unknown_link(behind_proxy, "198.51.100.1")
    assert r.status_code == 429, f"the 31st failure of one forwarded client: {r.status_code} {r.text}"
    # Another client behind the same proxy has its own count; a fake first hop added by the
    # client itself does not change who it is (the proxy appended the real one).
    assert unknown_link(behind_proxy, "198.51.100.2").status_code == 404
    assert unknown_link(behind_proxy, "198.51.100.2, 198.51.100.1").status_code == 429
    assert unknown_link(behind_proxy, "198.51.100.1, 198.51.100.3").status_code == 404


def test_limits_count_the_socket_when_the_headers_come_from_elsewhere(not_behind_proxy):
    for n in range(LINK_FAILURES_PER_HOUR):
        r = unknown_link(not_behind_proxy, f"198.51.100.{n + 1}")
        assert r.status_code == 404, (n, r.status_code, r.text)
    r = unknown_link(not_behind_proxy, "203.0.113.99")
    assert r.status_code == 429, f"a new forwarded address from the same socket: {r.status_code} {r.text}"


def qido_with_key(server, key: str, headers: dict) -> requests.Response:
    return requests.get(f"{server.dicomweb}/studies",
                        headers={"Authorization": f"Bearer {key}", "Accept": "application/dicom+json", **headers},
                        timeout=HTTP_TIMEOUT)


def test_a_key_allowlist_sees_the_forwarded_client_only_from_a_trusted_proxy(behind_proxy, not_behind_proxy):
    key = behind_proxy.create_key("PROXY", "198.51.100.0/24")
    assert qido_with_key(behind_proxy, key, {"X-Forwarded-For": "198.51.100.7"}).status_code in (200, 204)
    assert qido_with_key(behind_proxy, key, {"Forwarded": 'for="198.51.100.7:5000";proto=https'}).status_code in (200, 204)
    r = qido_with_key(behind_proxy, key, {"X-Forwarded-For": "203.0.113.5"})
    assert r.status_code == 403, r.text
    assert qido_with_key(behind_proxy, key, {}).status_code == 403, "the proxy itself is not in the allowlist"

    direct = not_behind_proxy.create_key("DIRECT", "198.51.100.0/24")
    r = qido_with_key(not_behind_proxy, direct, {"X-Forwarded-For": "198.51.100.7"})
    assert r.status_code == 403, f"a forwarded address claimed by a client was believed: {r.status_code}"


def test_a_spoof_attempt_is_in_the_audit_with_the_real_address(not_behind_proxy):
    unknown_link(not_behind_proxy, "192.0.2.66")
    entries = [json.loads(line) for line in not_behind_proxy.cli("audit", "export").stdout.splitlines() if line]
    alerts = [e for e in entries if "not a trusted proxy" in json.dumps(e)]
    assert alerts, "no audit entry for forwarding headers from an untrusted address"
    text = json.dumps(alerts)
    assert "127.0.0.1" in text and "192.0.2.66" not in text, text


def stow_sample(server, key: str, headers: dict) -> str:
    """STOW-RS of pydicom's CT sample; the RetrieveURL of the answer."""
    boundary = secrets.token_hex(8)
    data = Path(get_testdata_file("CT_small.dcm")).read_bytes()
    body = f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode() + data + f"\r\n--{boundary}--\r\n".encode()
    r = requests.post(f"{server.dicomweb}/studies", data=body, timeout=HTTP_TIMEOUT,
                      headers={"Authorization": f"Bearer {key}", "Accept": "application/dicom+json",
                               "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                               **headers})
    assert r.status_code == 200, r.text
    return r.json()["00081190"]["Value"][0]


def test_links_follow_the_scheme_and_host_the_trusted_proxy_forwards(behind_proxy, not_behind_proxy):
    forwarded = {"Host": "pacs.example.org", "X-Forwarded-Proto": "https", "X-Forwarded-For": "198.51.100.7"}
    url = stow_sample(behind_proxy, behind_proxy.create_key("PROXY"), forwarded)
    assert url.startswith("https://pacs.example.org/dicom-web/studies/"), url

    url = stow_sample(not_behind_proxy, not_behind_proxy.create_key("DIRECT"), {"X-Forwarded-Proto": "https"})
    assert url.startswith(f"{not_behind_proxy.url}/dicom-web/studies/"), url
