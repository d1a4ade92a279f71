"""A real 3-node Garage cluster (replication 3, quorum 2) speaks the S3 calls cloudfilm relies
on, with a plain SigV4 client, and keeps serving reads and writes with one node down."""

import os
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from garage import GarageCluster  # noqa: E402
from s3sig import S3Client  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with GarageCluster(nodes=3) as c:
        print(f"3-node Garage cluster up in {c.start_seconds:.1f} s")
        yield c


def client(c: GarageCluster, node: int = 0) -> S3Client:
    return S3Client(c.endpoints[node], c.region, c.access_key_id, c.secret_access_key)


def test_put_get_range_list_delete(cluster):
    s3 = client(cluster)
    b = cluster.bucket
    body = bytes(range(256)) * 40  # 10240 bytes
    s3.put_object(b, "studies/1.2.3/series/4/instance 5.dcm", body, "application/dicom")
    s3.put_object(b, "studies/1.2.3/other.dcm", b"second")
    s3.put_object(b, "elsewhere/x", b"third")

    got = s3.get_object(b, "studies/1.2.3/series/4/instance 5.dcm")
    assert got.body == body
    assert got.headers["content-length"] == str(len(body))

    part = s3.get_object(b, "studies/1.2.3/series/4/instance 5.dcm", "bytes=100-1123")
    assert part.status == 206
    assert part.body == body[100:1124]
    assert part.headers["content-range"] == f"bytes 100-1123/{len(body)}"
    tail = s3.get_object(b, "studies/1.2.3/series/4/instance 5.dcm", "bytes=-16")
    assert tail.status == 206 and tail.body == body[-16:]

    # Another node's endpoint sees the same objects.
    assert client(cluster, 2).get_object(b, "studies/1.2.3/other.dcm").body == b"second"

    assert sorted(s3.list_objects(b, "studies/")) == [
        "studies/1.2.3/other.dcm",
        "studies/1.2.3/series/4/instance 5.dcm",
    ]
    assert "elsewhere/x" in s3.list_objects(b)

    for key in ["studies/1.2.3/series/4/instance 5.dcm", "studies/1.2.3/other.dcm", "elsewhere/x"]:
        s3.delete_object(b, key)
    assert s3.head_object(b, "studies/1.2.3/other.dcm").status == 404
    assert s3.request("GET", b, "elsewhere/x").status == 404
    assert s3.list_objects(b) == []


def test_wrong_secret_is_refused(cluster):
    bad = S3Client(cluster.endpoint, cluster.region, cluster.access_key_id, "not-the-secret")
    assert bad.request("GET", cluster.bucket, query={"list-type": "2"}).status == 403


def test_one_node_down_reads_and_writes_still_succeed(cluster):
    s3 = client(cluster)
    b = cluster.bucket
    before = os.urandom(300_000)  # one block (block_size is 1 MiB), stored on all three
    s3.put_object(b, "survives/before", before)

    cluster.stop_node(2)
    try:
        assert not cluster.nodes[2].running()
        # Written with all three up, read with two.
        assert s3.get_object(b, "survives/before").body == before
        assert s3.get_object(b, "survives/before", "bytes=1000-1999").body == before[1000:2000]
        # Written and read with two (write quorum 2 of 3), through either live node.
        during = os.urandom(2_500_000)  # several blocks
        s3.put_object(b, "survives/during", during)
        assert client(cluster, 1).get_object(b, "survives/during").body == during
        assert sorted(s3.list_objects(b, "survives/")) == ["survives/before", "survives/during"]
        s3.delete_object(b, "survives/before")
        assert s3.head_object(b, "survives/before").status == 404
    finally:
        cluster.start_node(2)

    # The restarted node serves what was written while it was away.
    back = client(cluster, 2)
    assert back.get_object(b, "survives/during").body == during
    assert back.head_object(b, "survives/before").status == 404

    # Garage 2.5.0 does not repair on list, and each node filters out its own deleted entries
    # before the answers are merged: the node that missed the delete may bring the deleted key
    # back into listings (seen for minutes here) until a table sync, which we ask for.
    cluster.repair_tables()
    wait_until(
        lambda: all(
            client(cluster, i).list_objects(b, "survives/") == ["survives/during"]
            for i in range(3)
        ),
        "every node to list only survives/during after the table sync",
    )
    back.delete_object(b, "survives/during")
    assert [client(cluster, i).list_objects(b, "survives/") for i in range(3)] == [[], [], []]


def wait_until(check, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.5)
