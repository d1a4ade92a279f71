"""Fixtures that run the real cloudfilm binary for the Python interoperability tests.

Every server gets a fresh temporary data directory and a free port on 127.0.0.1 (the
binary binds port 0 and prints the port it got). Organizations and API keys are made with
the binary's own CLI. Every wait is bounded; every server is stopped with SIGTERM (then
killed if it does not exit), and its audit chain is verified after it stopped.

`CLOUDFILM_TEST_STORAGE` picks the backends every server of the run uses (one story, every
backend): unset or `embedded` for SQLite and a local directory, `postgres` for a scratch
PostgreSQL database per server (made on the local server, dropped at the end), and
`postgres+garage` for that plus a bucket per server on a 3-node Garage cluster started for
the run.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest
import requests

BIN = os.environ.get("CLOUDFILM_BIN", "/work/main/target/debug/cloudfilm")

CLI_TIMEOUT = 60  # seconds for one CLI command
START_TIMEOUT = 60  # seconds until the server prints where it listens
STOP_TIMEOUT = 20  # seconds after SIGTERM before the server is killed
HTTP_TIMEOUT = 120  # seconds for one HTTP request (a few malformed samples take ~1 min to refuse)

LISTENING = re.compile(r"^cloudfilm listening on (https?://127\.0\.0\.1:(\d+))\s*$")
DIMSE_LISTENING = re.compile(r"^DIMSE: AE (\S+) at 127\.0\.0\.1:(\d+)\s*$")
DIMSE_TLS_LISTENING = re.compile(r"^DIMSE TLS: AE (\S+) at 127\.0\.0\.1:(\d+)\s*$")
METRICS_LISTENING = re.compile(r"^Metrics: (https?://127\.0\.0\.1:\d+/metrics)\s*$")
BANNER_LINE_TIMEOUT = 10  # seconds for each further banner line after the first


STORAGE = os.environ.get("CLOUDFILM_TEST_STORAGE", "embedded")
POSTGRES_SERVER = os.environ.get("CLOUDFILM_TEST_POSTGRES", "postgres://127.0.0.1:5432/postgres")

# The storage environment of each data directory, and the scratch databases to drop.
_storage: dict[Path, dict] = {}
_databases: list[str] = []
_garage = None


def storage_env(data_dir: Path) -> dict:
    """The `--database` / `--blobs` settings of the archive in `data_dir` (made on first use)."""
    if data_dir in _storage:
        return _storage[data_dir]
    env: dict = {}
    if STORAGE.startswith("postgres"):
        name = f"cloudfilm_it_{uuid.uuid4().hex[:16]}"
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"CREATE DATABASE {name}"], check=True,
                       capture_output=True, timeout=CLI_TIMEOUT)
        _databases.append(name)
        env["CLOUDFILM_DATABASE"] = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    if STORAGE.endswith("+garage"):
        env.update(_garage_bucket())
    _storage[data_dir] = env
    return env


def use_storage(data_dir: Path, env: dict) -> None:
    """Gives the archive in `data_dir` these storage settings (several nodes of one archive)."""
    _storage[data_dir] = dict(env)


def _garage_bucket() -> dict:
    """A fresh bucket on the run's Garage cluster (started on first use)."""
    global _garage
    import sys
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "cluster"))
    from garage import GarageCluster  # noqa: E402
    if _garage is None:
        _garage = GarageCluster(nodes=3)
        _garage.start()
    bucket = _garage.create_bucket(f"cf-{uuid.uuid4().hex[:12]}")
    return {
        "CLOUDFILM_BLOBS": f"s3://{bucket}?endpoint={_garage.endpoint}&region={_garage.region}",
        "AWS_ACCESS_KEY_ID": _garage.access_key_id,
        "AWS_SECRET_ACCESS_KEY": _garage.secret_access_key,
    }


@pytest.fixture(scope="session", autouse=True)
def _scratch_storage():
    """Drops the run's scratch databases and stops its Garage cluster at the end."""
    yield
    for name in _databases:
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=CLI_TIMEOUT)
    if _garage is not None:
        _garage.stop()


def run_cli(data_dir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Runs `cloudfilm --data DIR ARGS...` to completion (bounded in time)."""
    proc = subprocess.run(
        [BIN, "--data", str(data_dir), *args],
        capture_output=True,
        text=True,
        timeout=CLI_TIMEOUT,
        env=_env(storage_env(data_dir)),
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"cloudfilm {' '.join(args)} exited {proc.returncode}\n"
            f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        )
    return proc


def _env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    # The data directory comes from --data only; keys live in DATA/keyring.json.
    for name in ("CLOUDFILM_DATA", "CLOUDFILM_CONFIG", "CLOUDFILM_MASTER_KEY", "CLOUDFILM_KEYRING_FILE",
                 "CLOUDFILM_DATABASE", "CLOUDFILM_BLOBS", "CLOUDFILM_KEYS"):
        env.pop(name, None)
    env.setdefault("RUST_LOG", "warn")
    env.update(extra or {})
    return env


def parse_multipart(response: requests.Response) -> list[tuple[dict, bytes]]:
    """The parts of a multipart/related response: (lower-cased headers, body) each."""
    content_type = response.headers.get("Content-Type", "")
    assert content_type.lower().startswith("multipart/related"), content_type
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    assert match, f"no boundary in {content_type!r}"
    delimiter = b"--" + match.group(1).encode()
    body = response.content
    parts = []
    chunks = body.split(b"\r\n" + delimiter)
    # The first chunk starts with the delimiter itself (no preamble expected).
    first = chunks[0]
    assert first.startswith(delimiter), "the body does not start with the boundary"
    chunks[0] = first[len(delimiter):]
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # close delimiter
        assert chunk.startswith(b"\r\n"), "a boundary is not followed by CRLF"
        head, sep, content = chunk[2:].partition(b"\r\n\r\n")
        assert sep, "a part has no header/body separator"
        headers = {}
        for line in head.decode("latin-1").split("\r\n"):
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        parts.append((headers, content))
    else:
        raise AssertionError("the multipart body has no close delimiter")
    return parts


def session_for(key: str | None, scheme: str = "bearer") -> requests.Session:
    """A requests session that presents `key` (or nothing) and never uses a proxy."""
    s = requests.Session()
    s.trust_env = False  # only ever talk to 127.0.0.1 directly
    # The TLS tests' own certificate, when a server of theirs is the one called.
    s.verify = os.environ.get("CLOUDFILM_TEST_CA_BUNDLE") or True
    if key is not None:
        if scheme == "bearer":
            s.headers["Authorization"] = f"Bearer {key}"
        elif scheme == "basic":
            s.auth = (key.split(".", 1)[0], key)
        else:
            raise ValueError(scheme)
    return s


class Cloudfilm:
    """One running `cloudfilm serve` with its own data directory."""

    def __init__(self, data_dir: Path, env: dict | None = None, wrapper: list[str] | None = None):
        self.data_dir = data_dir
        self.env = dict(env or {})  # extra environment for `serve` (e.g. CLOUDFILM_DIMSE__*)
        # A command `serve` runs under (it must exec its arguments), e.g. a mount namespace.
        self.wrapper = list(wrapper or [])
        self.proc: subprocess.Popen | None = None
        self.url = ""
        self.dicomweb = ""
        # From the banner's `DIMSE: AE <title> at 127.0.0.1:<port>` line (None if not printed).
        self.dimse_ae: str | None = None
        self.dimse_port: int | None = None
        # From `DIMSE TLS: AE <title> at 127.0.0.1:<port>` (with --dimse-tls; printed before DIMSE).
        self.dimse_tls_port: int | None = None
        # From the banner's `Metrics: http://127.0.0.1:<port>/metrics` line (with --metrics).
        self.metrics_url: str | None = None
        self.exit_code: int | None = None
        self._stderr = None

    # ---- CLI ---------------------------------------------------------------------------

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return run_cli(self.data_dir, *args, check=check)

    def create_org(self, code: str, name: str | None = None) -> None:
        self.cli("org", "create", "--code", code, "--name", name or f"Hospital {code}")

    def create_key(self, org: str, *allow: str) -> str:
        args = ["apikey", "create", "--org", org]
        for cidr in allow:
            args += ["--allow", cidr]
        out = self.cli(*args).stdout.strip().splitlines()
        assert out, "apikey create printed nothing on stdout"
        key = out[-1].strip()
        assert re.fullmatch(r"[A-Za-z0-9]+\.[A-Za-z0-9_\-]+", key), f"unexpected key format {key!r}"
        return key

    def revoke_key(self, key: str) -> None:
        self.cli("apikey", "revoke", key.split(".", 1)[0])

    def add_ae(self, org: str, title: str, host: str | None = None, port: int | None = None,
               certificate: Path | None = None) -> None:
        """Registers a DICOM node to `org` (`cloudfilm org ae add`), bound to a TLS client
        certificate when one is given."""
        args = ["org", "ae", "add", org, title]
        if certificate is not None:
            args += ["--certificate", str(certificate)]
        if host is not None:
            args += ["--host", host]
        if port is not None:
            args += ["--port", str(port)]
        self.cli(*args)

    # ---- process -----------------------------------------------------------------------

    def start(self) -> None:
        self._stderr = open(self.data_dir.parent / "server.stderr.log", "wb")
        self.proc = subprocess.Popen(
            [*self.wrapper, BIN, "serve", "--data", str(self.data_dir), "--http", "127.0.0.1:0", "--dimse", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env=_env({**storage_env(self.data_dir), **self.env}),
        )
        lines: queue.Queue = queue.Queue()

        def pump(stream):
            # Drains stdout for the server's whole life so it never blocks on a full pipe.
            for raw in stream:
                lines.put(raw.decode("utf-8", "replace"))
            lines.put(None)

        threading.Thread(target=pump, args=(self.proc.stdout,), daemon=True).start()
        try:
            first = lines.get(timeout=START_TIMEOUT)
        except queue.Empty:
            self.stop()
            raise AssertionError(f"the server printed nothing within {START_TIMEOUT}s") from None
        match = LISTENING.match(first or "")
        if not match:
            self.stop()
            raise AssertionError(f"unexpected first line from the server: {first!r}; {self.stderr_tail()}")
        self.url = match.group(1)
        self.dicomweb = self.url + "/dicom-web"
        # The rest of the banner (DICOMweb line, then the DIMSE line); bounded in lines and time.
        for _ in range(6):
            try:
                line = lines.get(timeout=BANNER_LINE_TIMEOUT)
            except queue.Empty:
                break
            if line is None:
                break
            metrics = METRICS_LISTENING.match(line)
            if metrics:
                self.metrics_url = metrics.group(1)
            dimse_tls = DIMSE_TLS_LISTENING.match(line)
            if dimse_tls:
                self.dimse_tls_port = int(dimse_tls.group(2))
            dimse = DIMSE_LISTENING.match(line)
            if dimse:
                self.dimse_ae, self.dimse_port = dimse.group(1), int(dimse.group(2))
                break

    def stop(self) -> int | None:
        """SIGTERM, then SIGKILL after STOP_TIMEOUT; returns the exit code (None if killed)."""
        if self.proc is None:
            return self.exit_code
        proc, self.proc = self.proc, None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                self.exit_code = proc.wait(timeout=STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT)
                self.exit_code = None
        else:
            self.exit_code = proc.returncode
        if self._stderr:
            self._stderr.close()
        return self.exit_code

    def stderr_tail(self, n: int = 4000) -> str:
        path = self.data_dir.parent / "server.stderr.log"
        return path.read_text(errors="replace")[-n:] if path.exists() else ""

    # ---- HTTP helpers ------------------------------------------------------------------

    def session(self, key: str | None, scheme: str = "bearer") -> requests.Session:
        return session_for(key, scheme)

    def stow(self, key: str, instances: list[bytes], study: str | None = None) -> requests.Response:
        """STOW-RS of raw Part-10 bytes, exactly as given, one part each."""
        boundary = uuid.uuid4().hex
        body = bytearray()
        for data in instances:
            body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            body += data
            body += b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        url = f"{self.dicomweb}/studies" + (f"/{study}" if study else "")
        headers = {
            "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
            "Accept": "application/dicom+json",
        }
        return self.session(key).post(url, data=bytes(body), headers=headers, timeout=HTTP_TIMEOUT)

    def get(self, key: str, path: str, accept: str | None = None, **kw) -> requests.Response:
        headers = kw.pop("headers", {})
        if accept:
            headers["Accept"] = accept
        url = path if path.startswith("http") else self.dicomweb + path
        assert url.startswith("http://127.0.0.1:"), url
        return self.session(key).get(url, headers=headers, timeout=HTTP_TIMEOUT, **kw)


@pytest.fixture(scope="module")
def cloudfilm_factory(tmp_path_factory):
    """Makes servers (each in a fresh data directory); stops them all at the end and
    checks that each exited cleanly and left an intact audit chain."""
    if not os.access(BIN, os.X_OK):
        pytest.fail(f"no cloudfilm binary at {BIN} (set CLOUDFILM_BIN)")
    servers: list[Cloudfilm] = []

    def make(orgs: dict[str, str] | None = None, env: dict | None = None,
             wrapper: list[str] | None = None) -> Cloudfilm:
        root = tmp_path_factory.mktemp("cloudfilm")
        server = Cloudfilm(root / "data", env=env, wrapper=wrapper)
        servers.append(server)
        for code, name in (orgs or {}).items():
            server.create_org(code, name)
        server.start()
        return server

    yield make
    problems = []
    for server in servers:
        was_running = server.proc is not None
        code = server.stop()
        if was_running and code != 0:
            problems.append(f"server exited {code} after SIGTERM: {server.stderr_tail()}")
        verify = run_cli(server.data_dir, "audit", "verify", check=False)
        if verify.returncode != 0:
            problems.append(f"audit verify exited {verify.returncode}: {verify.stdout} {verify.stderr}")
    assert not problems, "\n".join(problems)
