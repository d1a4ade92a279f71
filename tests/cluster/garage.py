"""A throwaway replicated Garage cluster on 127.0.0.1 for tests (standard library only).

    with GarageCluster(nodes=3) as cluster:
        cluster.endpoint, cluster.region, cluster.bucket,
        cluster.access_key_id, cluster.secret_access_key
        cluster.stop_node(2); ...; cluster.start_node(2)

Each node gets its own config, metadata and data directories under one temporary directory and
free loopback ports for RPC, S3 and admin. The cluster is connected, given a layout (one zone
and 1 GB per node), and a bucket with an access key allowed to read, write and own it, all
through the admin API v2. `replication_factor` is min(3, nodes) with `consistency_mode =
"consistent"`: with 3 nodes reads and writes need 2 of them, so one node may be down.

Run as a program it prints the settings as shell `export` lines and keeps the cluster up until
Ctrl-C or SIGTERM:

    python3 tests/cluster/garage.py --nodes 3

The Garage binary is $GARAGE_BIN, else `garage` on PATH, else ~/.cargo/bin/garage (tests/setup
installs 2.5.0 there).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

WAIT_SECONDS = 30.0
LOG_TAIL_LINES = 40


class GarageError(RuntimeError):
    pass


def find_garage() -> str:
    """The Garage binary: $GARAGE_BIN, `garage` on PATH, or ~/.cargo/bin/garage."""
    explicit = os.environ.get("GARAGE_BIN")
    if explicit:
        if not os.access(explicit, os.X_OK):
            raise GarageError(f"GARAGE_BIN={explicit} is not an executable file")
        return explicit
    found = shutil.which("garage")
    if found:
        return found
    cargo = Path.home() / ".cargo" / "bin" / "garage"
    if os.access(cargo, os.X_OK):
        return str(cargo)
    raise GarageError("no Garage binary (GARAGE_BIN, PATH, ~/.cargo/bin): run tests/setup")


def _free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (all held open together, so none is handed out twice)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


class Node:
    def __init__(self, index: int, root: Path, rpc_port: int, s3_port: int, admin_port: int):
        self.index = index
        self.dir = root / f"node{index}"
        self.config = self.dir / "garage.toml"
        self.log_path = self.dir / "garage.log"
        self.rpc_port = rpc_port
        self.s3_port = s3_port
        self.admin_port = admin_port
        self.process: subprocess.Popen | None = None
        self.node_id: str | None = None

    @property
    def s3_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    @property
    def rpc_addr(self) -> str:
        return f"127.0.0.1:{self.rpc_port}"

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


class GarageCluster:
    """N Garage nodes on 127.0.0.1, connected, with an applied layout, a bucket and a key.

    Arguments: nodes (default 3), bucket (default "cloudfilm"), region (the s3_region, default
    "garage"), replication_factor (default min(3, nodes)), capacity per node in bytes (default
    1 GB; only the layout's weights, nothing is reserved), binary (default find_garage()),
    root (a directory to use instead of a new temporary one, which stop() then keeps), timeout
    for every wait (default 30 s).

    Attributes once started: endpoint (node 0's S3 URL), endpoints (every node's), region,
    bucket, bucket_id, access_key_id, secret_access_key, root, nodes (Node objects: index,
    node_id, rpc_port, s3_port, admin_port, config, log_path, process), admin_token,
    start_seconds.

    Methods: start() / stop() (or use it as a context manager), stop_node(i), start_node(i),
    repair_tables(), client(i) (an s3sig.S3Client on node i), env() (the settings as
    AWS_* / S3_BUCKET / GARAGE_ADMIN_* variables).
    """

    def __init__(
        self,
        nodes: int = 3,
        bucket: str = "cloudfilm",
        region: str = "garage",
        replication_factor: int | None = None,
        capacity: int = 1_000_000_000,
        binary: str | None = None,
        root: str | os.PathLike | None = None,
        timeout: float = WAIT_SECONDS,
    ):
        if nodes < 1:
            raise ValueError("a cluster needs at least one node")
        self.replication_factor = replication_factor or min(3, nodes)
        if self.replication_factor > nodes:
            raise ValueError(f"replication_factor {self.replication_factor} > {nodes} nodes")
        self.node_count = nodes
        self.bucket = bucket
        self.region = region
        self.capacity = capacity
        self.binary = binary or find_garage()
        self.timeout = timeout
        self._own_root = root is None
        self.root = Path(root) if root is not None else None
        self.rpc_secret = secrets.token_hex(32)
        self.admin_token = secrets.token_urlsafe(24)
        self.nodes: list[Node] = []
        self.bucket_id: str | None = None
        self.access_key_id: str | None = None
        self.secret_access_key: str | None = None
        self.start_seconds: float | None = None

    # ---- lifecycle ----

    def __enter__(self) -> "GarageCluster":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "GarageCluster":
        began = time.monotonic()
        try:
            if self.root is None:
                self.root = Path(tempfile.mkdtemp(prefix="cloudfilm-garage-"))
            ports = _free_ports(3 * self.node_count)
            for i in range(self.node_count):
                node = Node(i, self.root, *ports[3 * i : 3 * i + 3])
                (node.dir / "meta").mkdir(parents=True, exist_ok=True)
                (node.dir / "data").mkdir(parents=True, exist_ok=True)
                node.config.write_text(self._config(node))
                node.config.chmod(0o600)
                self.nodes.append(node)
            for node in self.nodes:
                self._spawn(node)
            for node in self.nodes:
                self._wait_admin(node)
            self._connect()
            self._wait(
                lambda: self._all_up(self.nodes[0]),
                "every node connected to node 0",
                self.nodes[0],
            )
            self._assign_layout()
            for node in self.nodes:
                self._wait(lambda n=node: self._healthy(n), "the cluster healthy", node)
            self._create_bucket_and_key()
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """End every node this cluster started (by pid), then remove its temporary directory."""
        for node in self.nodes:
            self._terminate(node)
        if self._own_root and self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def stop_node(self, i: int) -> None:
        """Stop node i (its data stays) to simulate losing it."""
        self._terminate(self.nodes[i])

    def start_node(self, i: int) -> None:
        """Start node i again with its data and wait until the others see it up and healthy."""
        node = self.nodes[i]
        if node.running():
            return
        self._spawn(node)
        self._wait_admin(node)
        # It knows its peers from its metadata, but the others only retry a lost peer every
        # 30 s (garage_net's CONN_RETRY_INTERVAL) and call it down until then, even once it
        # has connected to them: have each of them connect to it now.
        peers = [f"{n.node_id}@{n.rpc_addr}" for n in self.nodes if n is not node and n.running()]
        if peers:
            self._admin(node, "POST", "/v2/ConnectClusterNodes", peers)
        for other in self.nodes:
            if other is not node and other.running():
                self._admin(
                    other, "POST", "/v2/ConnectClusterNodes", [f"{node.node_id}@{node.rpc_addr}"]
                )
        for other in self.nodes:
            if other.running():
                self._wait(lambda o=other: self._all_up(o), f"node {i} seen up", other)
        self._wait(lambda: self._healthy(node), f"node {i} healthy", node)

    def repair_tables(self) -> None:
        """Ask every running node for a full metadata table sync (admin LaunchRepairOperation
        "tables"). Garage does not repair on list: after a node missed a delete while down,
        listings that ask it may show the deleted key again until its tables are synced."""
        for node in self.nodes:
            if node.running():
                self._admin(
                    node, "POST", "/v2/LaunchRepairOperation?node=self", {"repairType": "tables"}
                )

    # ---- settings ----

    @property
    def endpoint(self) -> str:
        return self.nodes[0].s3_endpoint

    @property
    def endpoints(self) -> list[str]:
        return [n.s3_endpoint for n in self.nodes]

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ACCESS_KEY_ID": self.access_key_id or "",
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key or "",
            "S3_BUCKET": self.bucket,
            "GARAGE_ADMIN_ENDPOINTS": " ".join(
                f"http://127.0.0.1:{n.admin_port}" for n in self.nodes
            ),
            "GARAGE_ADMIN_TOKEN": self.admin_token,
        }

    def client(self, node: int = 0):
        """An s3sig.S3Client for node's S3 endpoint with the cluster's key."""
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        try:
            from s3sig import S3Client
        finally:
            sys.path.pop(0)
        return S3Client(
            self.nodes[node].s3_endpoint, self.region, self.access_key_id, self.secret_access_key
        )

    # ---- internals ----

    def _config(self, node: Node) -> str:
        return f"""\
metadata_dir = "{node.dir / 'meta'}"
data_dir = "{node.dir / 'data'}"
db_engine = "lmdb"
# cloudfilm stores ciphertext only: compressing it costs CPU and saves nothing.
compression_level = "none"

replication_factor = {self.replication_factor}
consistency_mode = "consistent"

rpc_bind_addr = "{node.rpc_addr}"
rpc_public_addr = "{node.rpc_addr}"
rpc_secret = "{self.rpc_secret}"

[s3_api]
s3_region = "{self.region}"
api_bind_addr = "127.0.0.1:{node.s3_port}"

[admin]
api_bind_addr = "127.0.0.1:{node.admin_port}"
admin_token = "{self.admin_token}"
"""

    def _spawn(self, node: Node) -> None:
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "garage=info")
        env["NO_COLOR"] = "1"
        log = open(node.log_path, "ab")
        try:
            node.process = subprocess.Popen(
                [self.binary, "-c", str(node.config), "server"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        finally:
            log.close()

    def _terminate(self, node: Node) -> None:
        proc = node.process
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()  # SIGTERM to this pid only
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        node.process = None

    def _admin(self, node: Node, method: str, path: str, body=None, ok_only: bool = True):
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            f"http://127.0.0.1:{node.admin_port}{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Bearer {self.admin_token}",
                "Content-Type": "application/json",
            },
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                text = resp.read()
        except urllib.error.HTTPError as e:
            if not ok_only:
                return None
            detail = e.read().decode(errors="replace")[:500]
            raise GarageError(
                f"admin {method} {path} on node {node.index}: HTTP {e.code}: {detail}\n"
                f"--- node {node.index} log tail ---\n{node.log_tail()}"
            ) from None
        return json.loads(text) if text.strip() else None

    def _wait(self, check, what: str, node: Node) -> None:
        deadline = time.monotonic() + self.timeout
        last = None
        while True:
            if node.process is not None and node.process.poll() is not None:
                raise GarageError(
                    f"node {node.index} exited ({node.process.returncode}) while waiting for {what}\n"
                    f"--- node {node.index} log tail ({node.log_path}) ---\n{node.log_tail()}"
                )
            try:
                if check():
                    return
            except (OSError, GarageError, ValueError, KeyError) as e:
                last = e
            if time.monotonic() > deadline:
                raise GarageError(
                    f"timed out after {self.timeout:.0f} s waiting for {what}"
                    + (f" (last error: {last})" if last else "")
                    + f"\n--- node {node.index} log tail ({node.log_path}) ---\n{node.log_tail()}"
                )
            time.sleep(0.2)

    def _wait_admin(self, node: Node) -> None:
        def ready():
            info = self._admin(node, "GET", "/v2/GetNodeInfo?node=self")
            (node_info,) = info["success"].values()
            node.node_id = node_info["nodeId"]
            return True

        self._wait(ready, f"node {node.index}'s admin API", node)

    def _connect(self) -> None:
        first = self.nodes[0]
        peers = [f"{n.node_id}@{n.rpc_addr}" for n in self.nodes[1:]]
        if not peers:
            return

        def connected():
            results = self._admin(first, "POST", "/v2/ConnectClusterNodes", peers)
            failed = [r.get("error") for r in results if not r.get("success")]
            if failed:
                raise GarageError(f"connect failed: {failed}")
            return True

        self._wait(connected, "node 0 to connect to its peers", first)

    def _all_up(self, node: Node) -> bool:
        status = self._admin(node, "GET", "/v2/GetClusterStatus")
        up = {n["id"] for n in status["nodes"] if n.get("isUp")}
        return all(n.node_id in up for n in self.nodes if n.running())

    def _healthy(self, node: Node) -> bool:
        health = self._admin(node, "GET", "/v2/GetClusterHealth")
        return health["status"] == "healthy" and health["storageNodesUp"] == self.node_count

    def _assign_layout(self) -> None:
        first = self.nodes[0]
        roles = [
            {"id": n.node_id, "zone": f"z{n.index}", "capacity": self.capacity, "tags": []}
            for n in self.nodes
        ]
        self._admin(first, "POST", "/v2/UpdateClusterLayout", {"roles": roles})
        version = self._admin(first, "GET", "/v2/GetClusterLayout")["version"]
        self._admin(first, "POST", "/v2/ApplyClusterLayout", {"version": version + 1})

    def _create_bucket_and_key(self) -> None:
        first = self.nodes[0]
        bucket = self._admin(first, "POST", "/v2/CreateBucket", {"globalAlias": self.bucket})
        self.bucket_id = bucket["id"]
        key = self._admin(first, "POST", "/v2/CreateKey", {"name": "cloudfilm-tests"})
        self.access_key_id = key["accessKeyId"]
        self.secret_access_key = key["secretAccessKey"]
        self._admin(
            first,
            "POST",
            "/v2/AllowBucketKey",
            {
                "bucketId": self.bucket_id,
                "accessKeyId": self.access_key_id,
                "permissions": {"read": True, "write": True, "owner": True},
            },
        )

    def create_bucket(self, name: str) -> str:
        """Another bucket the cluster's key may read and write; its name back."""
        first = self.nodes[0]
        bucket = self._admin(first, "POST", "/v2/CreateBucket", {"globalAlias": name})
        self._admin(
            first,
            "POST",
            "/v2/AllowBucketKey",
            {
                "bucketId": bucket["id"],
                "accessKeyId": self.access_key_id,
                "permissions": {"read": True, "write": True, "owner": True},
            },
        )
        return name


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run a local replicated Garage cluster.")
    parser.add_argument("--nodes", type=int, default=3)
    parser.add_argument("--bucket", default="cloudfilm")
    parser.add_argument("--region", default="garage")
    parser.add_argument("--root", help="keep the nodes' files here instead of a temporary dir")
    args = parser.parse_args(argv)

    stopping = False

    def on_signal(signum, frame):
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    cluster = GarageCluster(nodes=args.nodes, bucket=args.bucket, region=args.region, root=args.root)
    try:
        cluster.start()
        for name, value in cluster.env().items():
            print(f"export {name}={shlex.quote(value)}")
        print(
            f"# {args.nodes} nodes up in {cluster.start_seconds:.1f} s under {cluster.root}; "
            "Ctrl-C stops them",
            flush=True,
        )
        while not stopping:
            for node in cluster.nodes:
                if not node.running():
                    print(f"# node {node.index} exited:\n{node.log_tail()}", file=sys.stderr)
                    return 1
            time.sleep(0.5)
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
