"""`batch-gateway up` run as a user runs it: in a terminal session of its own, stopped with
Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from openai import OpenAI

START_TIMEOUT_SECONDS = 90.0


class UpProcess:
    def __init__(
        self, data_dir: Path, port: int, *extra: str, environment: dict[str, str] | None = None
    ) -> None:
        self.port = port
        # In a session of its own, as a terminal runs a command: `ctrl_c` signals its group.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batch_gateway", "up", "--data-dir", str(data_dir),
             "--port", str(port), *extra],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(environment or {})},
            start_new_session=True,
        )  # fmt: skip
        self.banner = self._read_banner()

    def _read_banner(self) -> str:
        assert self.process.stdout is not None
        lines: list[str] = []
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            line = self.process.stdout.readline().decode()
            if not line:
                break
            lines.append(line)
            if line.startswith("Press Ctrl-C"):
                return "".join(lines)
        self.process.kill()
        raise AssertionError("`up` did not come up:\n" + "".join(lines))

    def client(self) -> OpenAI:
        return OpenAI(
            base_url=f"http://127.0.0.1:{self.port}/v1",
            api_key="unused",
            _strict_response_validation=True,
        )

    def interrupt(self) -> int:
        self.process.send_signal(signal.SIGINT)
        return self._wait_stopped()

    def ctrl_c(self) -> int:
        """What Ctrl-C in a terminal does: SIGINT to every process of the foreground group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self._wait_stopped()

    def _wait_stopped(self) -> int:
        code = self.process.wait(timeout=90)
        if self.process.stdout is not None:
            self.process.stdout.close()
        return code
