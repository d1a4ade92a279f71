"""The OpenAPI document (`GET /api/v1/openapi.json`) against the real server, with schemathesis:
every documented operation is called with generated requests, and every answer must be no 5xx,
carry a documented status and a documented content type, and have a body that matches its schema.

The server holds the patient's study (the same world as test_share_download.py: eight pydicom
samples in one study, the patient logged in, consenting, matched and stepped up), a share of
the original and a de-identified share (each unlocked into a share-scoped session) and a
download link. Every request carries the patient's session cookie and `X-CSRF-Token`, and the
share-scoped session, so that operations are exercised past the login check; about half of
the generated requests (chosen by a hash of their parameters, so a run is repeatable) have their
ids, tokens and codes replaced with the real ones, so that they get past the lookup too.
Logging out and withdrawing consent are called with sessions of their own (two more accounts),
so that they do not end the patient's. Operations that delete a member or end a holding never
get the real ids.

Rate limits (one-time codes, wrong codes and passwords, link failures from one address, match
attempts, download links) are met as they come: their 429 is documented. Generation is
positive only (requests valid by the schema), derandomized: the schema's examples, then a few
generated requests per operation.

schemathesis' own pytest plugin does not run under pytest 9.2 (it reaches for a node attribute
that pytest renamed), so the operations are driven here through its Python API: one test,
every operation, every failure reported with its operation.
"""

from __future__ import annotations

import http.cookiejar
import time
import zlib
from dataclasses import dataclass

import hypothesis
import hypothesis.strategies as st
import pytest
import requests
import schemathesis
from openapi_spec_validator.validation import OpenAPIV31SpecValidator
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.config import SchemathesisConfig
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from conftest import HTTP_TIMEOUT, session_for
from test_share_download import ACCESSION, SHARE_PASSWORD, PatientClient, make_world, unlock

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MAX_EXAMPLES = 25  # generated requests per operation (at most)
PHONE_LOGOUT = "13900139000"  # an account whose session POST /auth/logout may end
PHONE_WITHDRAW = "13700137000"  # an account whose consent DELETE /me/consents/health_data may withdraw

# Generation (positive only: requests valid by the schema) is the config's; the rounds are run
# here, with Hypothesis repeatable (derandomized) and without shrinking (the first failure of an
# operation is kept as it came).
CONFIG = """
[generation]
mode = "positive"
with-security-parameters = false
"""
SETTINGS = hypothesis.settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[hypothesis.Phase.explicit, hypothesis.Phase.generate],
    suppress_health_check=list(hypothesis.HealthCheck),
    verbosity=hypothesis.Verbosity.quiet,
)


@dataclass
class Api:
    """The running server and the real ids, tokens and sessions the calls use."""

    url: str
    org_key: str
    patient: PatientClient  # logged in, consenting, matched, stepped up
    logout: PatientClient  # its own session, for POST /auth/logout
    withdraw: PatientClient  # its own session, for DELETE /me/consents/health_data
    member: str
    exam: str
    share_token: str
    spare_share: str  # revoked by DELETE /shares/{id} at will
    download_token: str
    download_code: str
    share_cookie: str  # cf_share of the share of the original
    deid_cookie: str  # cf_share of the de-identified share

    def cookies(self, client: PatientClient, share_cookie: str) -> dict[str, str]:
        jar = client.http.cookies
        return {
            "Cookie": f"cf_session={jar.get('cf_session')}; cf_csrf={jar.get('cf_csrf')}; cf_share={share_cookie}",
            "X-CSRF-Token": jar.get("cf_csrf"),
        }

    def headers_for(self, case, pick: int) -> dict[str, str]:
        client = self.patient
        if (case.method, case.path) == ("POST", "/api/v1/auth/logout"):
            client = self.logout
        elif (case.method, case.path) == ("DELETE", "/api/v1/me/consents/health_data"):
            client = self.withdraw
        headers = self.cookies(client, self.deid_cookie if pick % 3 == 0 else self.share_cookie)
        if case.path == "/api/v1/reports":
            headers["Authorization"] = f"Bearer {self.org_key}"
        return headers

    def prepare(self, case, pick: int) -> None:
        """Puts the real ids, tokens and codes into the request when `pick` is even."""
        if pick % 2:
            return
        params = case.path_parameters if case.path_parameters is not None else {}
        body = case.body if isinstance(case.body, dict) else None
        path, method = case.path, case.method
        if path.startswith("/api/v1/members/{id}") and method != "DELETE":
            params["id"] = self.member
        elif path.startswith("/api/v1/exams/{id}"):
            params["id"] = self.exam
        elif path == "/api/v1/shares/{id}":
            params["id"] = self.spare_share
        elif path == "/api/v1/shared/{token}/unlock":
            params["token"] = self.share_token
            if body is not None and pick % 4 == 0:
                body["password"] = SHARE_PASSWORD
        elif path == "/api/v1/downloads/{token}":
            params["token"] = self.download_token
            if body is not None and pick % 4 == 0:
                body["code"] = self.download_code
        elif path == "/api/v1/reports" and body is not None:
            body.pop("study_uid", None)
            body["accession_number"] = ACCESSION
        if "series" in params:
            params["series"], params["n"] = 1, 1


def share_session(server, token: str) -> str:
    """The `cf_share` cookie of a share unlocked with its password."""
    http = session_for(None)
    r = unlock(server, token, SHARE_PASSWORD, http)
    assert r.status_code == 200, f"unlocking a share: {r.status_code} {r.text}"
    return http.cookies.get("cf_share")


@pytest.fixture(scope="module")
def api(cloudfilm_factory, tmp_path_factory) -> Api:
    world = make_world(cloudfilm_factory, tmp_path_factory.mktemp("openapi"))
    server, patient = world.server, world.patient
    patient.step_up()
    share = patient.create_share(world.exam, deidentified=False)
    deidentified = patient.create_share(world.exam, deidentified=True)
    spare = patient.create_share(world.exam, deidentified=False)
    token, code = patient.create_download(world.exam)
    others = []
    for phone in (PHONE_LOGOUT, PHONE_WITHDRAW):
        other = PatientClient(server, world.outbox, phone=phone)
        other.login()
        others.append(other)
    return Api(
        url=server.url,
        org_key=world.key,
        patient=patient,
        logout=others[0],
        withdraw=others[1],
        member=world.member,
        exam=world.exam,
        share_token=share["token"],
        spare_share=spare["id"],
        download_token=token,
        download_code=code,
        share_cookie=share_session(server, share["token"]),
        deid_cookie=share_session(server, deidentified["token"]),
    )


@pytest.fixture(scope="module")
def transport() -> requests.Session:
    """Talks to 127.0.0.1 only, and keeps no cookies: each call names its own."""
    s = session_for(None)
    s.cookies.set_policy(http.cookiejar.DefaultCookiePolicy(allowed_domains=[]))
    return s


@pytest.fixture(scope="module")
def document(api) -> dict:
    """The document as the server serves it, without logging in."""
    r = session_for(None).get(api.url + "/api/v1/openapi.json", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.headers["Content-Type"] == "application/json", r.status_code
    return r.json()


@pytest.fixture(scope="module")
def api_schema(api, document):
    config = SchemathesisConfig.from_str(f'base-url = "{api.url}"\n' + CONFIG)
    return schemathesis.openapi.from_dict(document, config=config)


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1."), document["openapi"]
    errors = [e.message for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert not errors, errors


def test_every_documented_operation_answers_as_documented(api, api_schema, transport):
    failures: dict[str, str] = {}
    calls: dict[str, int] = {}
    statuses: dict[str, set[int]] = {}
    started = time.monotonic()

    operations = []
    for result in api_schema.get_all_operations():
        operations.append(result.ok())  # a malformed operation fails here, naming itself
    assert len(operations) >= 40, [o.label for o in operations]

    for operation in operations:
        label = operation.label

        def call(case) -> None:
            if label in failures:
                return
            calls[label] = calls.get(label, 0) + 1
            pick = zlib.crc32(repr((case.path_parameters, case.query, case.body)).encode())
            api.prepare(case, pick)
            try:
                response = case.call_and_validate(
                    session=transport, headers=api.headers_for(case, pick), checks=CHECKS, timeout=HTTP_TIMEOUT
                )
                statuses.setdefault(label, set()).add(response.status_code)
            except (Exception, BaseExceptionGroup) as e:  # failed checks (a FailureGroup), a transport error
                failures[label] = f"{type(e).__name__}: {e}"

        examples = operation.get_strategies_from_examples()
        if examples:
            hypothesis.settings(SETTINGS, max_examples=len(examples))(hypothesis.given(st.one_of(examples))(call))()
        SETTINGS(hypothesis.given(operation.as_strategy(GenerationMode.POSITIVE))(call))()

    elapsed = time.monotonic() - started
    print(f"{sum(calls.values())} calls to {len(operations)} operations in {elapsed:.0f} s")
    for label in sorted(statuses):
        print(f"  {label}: {calls[label]} calls, {sorted(statuses[label])}")
    assert not failures, "\n\n".join(f"{label}:\n{text}" for label, text in failures.items())
    assert set(calls) == {o.label for o in operations}, "an operation was never called"
