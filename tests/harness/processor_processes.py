"""`batch-gateway processor` as real subprocesses of a live stack, to kill and to stop.

Each process gets its settings as the environment (`to_environment`), exactly as a deployment
would, and writes its log to a file beside the test's other files, so a failing crash test can
show what each processor did. Processes still alive when the block ends are killed.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.settings import settings_for, to_environment
from batch_gateway.stack.redis_server import free_port

CLI = Path(sys.executable).with_name("batch-gateway")


class ProcessorProcess:
    def __init__(self, name: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name = name
        self.process = process
        self.log_path = log_path

    def kill(self) -> None:
        """`kill -9`: no shutdown, no last write."""
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def terminate(self) -> None:
        self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float) -> int | None:
        """The exit code, or None if the process still runs after `timeout` seconds."""
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def logged_at(self, message: str) -> datetime:
        """When the process first logged a message starting with `message`."""
        for line in self.log().splitlines():
            record = json.loads(line)
            if str(record.get("message", "")).startswith(message):
                return datetime.fromisoformat(str(record["time"]).replace("Z", "+00:00"))
        raise AssertionError(f"{self.name} never logged {message!r}:\n{self.log()}")


class ProcessorLauncher:
    """Starts processors that join the stack `settings` describe."""

    def __init__(self, settings: ApiServerSettings, log_dir: Path) -> None:
        self._settings = settings
        self._log_dir = log_dir
        self._started: list[ProcessorProcess] = []

    def start(self, name: str, **overrides: Any) -> ProcessorProcess:
        processor = settings_for(
            ProcessorSettings, self._settings, name=name, port=free_port(), **overrides
        )
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith("BATCH_GATEWAY_")
        }
        environment |= to_environment(processor)
        log_path = self._log_dir / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                [str(CLI), "processor"], env=environment, stdout=log, stderr=subprocess.STDOUT
            )
        started = ProcessorProcess(name, process, log_path)
        self._started.append(started)
        return started

    def logs(self) -> str:
        return "\n".join(f"--- {p.name} ---\n{p.log()}" for p in self._started)

    def kill_all(self) -> None:
        for started in self._started:
            if started.process.poll() is None:
                started.kill()


@contextlib.contextmanager
def processor_launcher(settings: ApiServerSettings, log_dir: Path) -> Iterator[ProcessorLauncher]:
    launcher = ProcessorLauncher(settings, log_dir)
    try:
        yield launcher
    finally:
        launcher.kill_all()
