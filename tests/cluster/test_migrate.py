"""`cloudfilm migrate`: an embedded archive copied to PostgreSQL and Garage, killed halfway and
resumed; the target then serves every instance as it was stored and its audit chain verifies."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pydicom

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "interop"))
sys.path.insert(0, str(HERE))

import conftest  # noqa: E402
from conftest import BIN, HTTP_TIMEOUT, Cloudfilm  # noqa: E402
from garage import GarageCluster  # noqa: E402
from test_cluster import dataset_of  # noqa: E402

POSTGRES_SERVER = os.environ.get("CLOUDFILM_TEST_POSTGRES", "postgres://127.0.0.1:5432/postgres")
SAMPLES = ["CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm", "rtplan.dcm"]


def test_a_migration_killed_halfway_resumes_and_the_target_serves_everything(tmp_path):
    data = tmp_path / "data"
    files = tmp_path / "files"
    files.mkdir()
    test_files = Path(pydicom.__file__).parent / "data" / "test_files"
    for name in SAMPLES:
        shutil.copy(test_files / name, files / name)
    embedded = Cloudfilm(data)
    embedded.create_org("H1", "Hospital One")
    key = embedded.create_key("H1")
    embedded.cli("import", "--org", "H1", str(files))

    garage = GarageCluster(nodes=3)
    garage.start()
    name = f"cloudfilm_migrate_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"CREATE DATABASE {name}"], check=True, timeout=60)
    target_db = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + name
    target_blobs = f"s3://{garage.bucket}?endpoint={garage.endpoint}&region={garage.region}"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": garage.access_key_id, "AWS_SECRET_ACCESS_KEY": garage.secret_access_key}
    command = [BIN, "--data", str(data), "migrate", "--to-database", target_db, "--to-blobs", target_blobs]
    try:
        # Killed as soon as the first blob has reached the target.
        proc = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        s3 = garage.client(0)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            if s3.list_objects(garage.bucket):
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.01)
        proc.wait(timeout=30)
        assert proc.returncode == -signal.SIGKILL, "the migration was killed halfway"

        resumed = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert f"migrated: {len(SAMPLES)} blobs" in resumed.stdout, resumed.stdout
        assert "audit chain of" in resumed.stdout and "verified" in resumed.stdout

        # A node of the new archive: same key ring, the cluster's stores.
        node = Cloudfilm(tmp_path / "node" / "data")
        (tmp_path / "node").mkdir(exist_ok=True)
        conftest.use_storage(node.data_dir, {
            "CLOUDFILM_DATABASE": target_db,
            "CLOUDFILM_BLOBS": target_blobs,
            "CLOUDFILM_KEYS": str(data / "keyring.json"),
            "AWS_ACCESS_KEY_ID": garage.access_key_id,
            "AWS_SECRET_ACCESS_KEY": garage.secret_access_key,
        })
        node.start()
        try:
            http = node.session(key)
            for sample in SAMPLES:
                ds = pydicom.dcmread(files / sample)
                url = (f"{node.dicomweb}/studies/{ds.StudyInstanceUID}/series/{ds.SeriesInstanceUID}"
                       f"/instances/{ds.SOPInstanceUID}")
                r = http.get(url, headers={"Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*'},
                             timeout=HTTP_TIMEOUT)
                assert r.status_code == 200, (sample, r.status_code, r.text[:300])
                stored = conftest.parse_multipart(r)[0][1]
                assert dataset_of(stored) == dataset_of((files / sample).read_bytes()), sample
        finally:
            node.stop()
        verify = node.cli("audit", "verify", check=False)
        assert verify.returncode == 0, verify.stdout + verify.stderr
        backup_with_the_engines_tools(tmp_path, node, garage, target_db, env)
    finally:
        garage.stop()
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],
                       capture_output=True, timeout=60)


def backup_with_the_engines_tools(tmp_path: Path, node: Cloudfilm, garage: GarageCluster, database: str,
                                  env: dict[str, str]) -> None:
    """On PostgreSQL + S3, `backup --to` seals the ring and names the engines' tools; a dump restored
    with pg_restore and a bucket copy, opened with the unsealed ring, pass `backup verify --engines`;
    a copy that lost an object does not."""
    backup = tmp_path / "backup"
    passphrase = tmp_path / "passphrase"
    passphrase.write_text("the cluster's backup passphrase\n")
    planned = node.cli("backup", "--to", str(backup), "--passphrase-file", str(passphrase))
    assert "pg_dump" in planned.stdout and (backup / "keyring.sealed").exists(), planned.stdout
    assert "postgres://" in planned.stdout and "@" not in planned.stdout.split("pg_dump")[1].split("\n")[0]

    dump = backup / "index.pgdump"
    subprocess.run(["pg_dump", "--format=custom", f"--file={dump}", database], check=True, timeout=120)
    restored = f"cloudfilm_restored_{uuid.uuid4().hex[:12]}"
    subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"CREATE DATABASE {restored}"], check=True, timeout=60)
    restored_db = POSTGRES_SERVER.rsplit("/", 1)[0] + "/" + restored
    try:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={restored_db}", str(dump)], check=True, timeout=120)
        s3 = garage.client(0)
        copy = garage.create_bucket(f"copy-{uuid.uuid4().hex[:12]}")
        objects = s3.list_objects(garage.bucket)
        for key in objects:
            s3.put_object(copy, key, s3.get_object(garage.bucket, key).body)
        ring = tmp_path / "unsealed-ring.json"
        node.cli("backup", "unseal", str(backup), "--to", str(ring), "--passphrase-file", str(passphrase))
        assert oct(ring.stat().st_mode & 0o777) == "0o600"

        def verify_copy() -> subprocess.CompletedProcess:
            copy_url = f"s3://{copy}?endpoint={garage.endpoint}&region={garage.region}"
            return subprocess.run(
                [BIN, "--data", str(tmp_path / "verifier"), "--database", restored_db, "--blobs", copy_url,
                 "--keys", str(ring), "backup", "verify", "--engines"],
                env=env, capture_output=True, text=True, timeout=300)

        checked = verify_copy()
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert f"{len(SAMPLES)} blobs read back" in checked.stdout, checked.stdout
        blob = next(k for k in objects if "audit" not in k)
        s3.delete_object(copy, blob)
        checked = verify_copy()
        assert checked.returncode == 1 and blob.rsplit("/", 1)[-1] in checked.stdout, (blob, checked.stdout, checked.stderr)
    finally:
        subprocess.run(["psql", "-q", POSTGRES_SERVER, "-c", f"DROP DATABASE IF EXISTS {restored} WITH (FORCE)"],
                       capture_output=True, timeout=60)
