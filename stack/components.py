"""The components `batch-gateway up` runs as child processes, and their lifecycle."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.settings import SettingsError, load_settings
from batch_gateway.stack.redis_server import free_port

COMPONENTS = ("apiserver", "projector", "processor", "gc", "simulator")
# Stopped one after another in this order: no new work first (the API), then the processors
# while what they answer to is still up (the simulator, Redis, PostgreSQL), then what records
# and expires their work, and the downstream last.
STOP_ORDER = ("apiserver", "processor", "gc", "projector", "simulator")
INFERENCE_URL_VARIABLE = "BATCH_GATEWAY_GLOBAL_INFERENCE_GATEWAY_URL"
READY_TIMEOUT_SECONDS = 60.0
STOP_GRACE_SECONDS = 15.0
# On top of the processor's own shutdown grace: its jobs' final commits and acknowledgements.
PROCESSOR_STOP_MARGIN_SECONDS = 15.0


class Component:
    def __init__(
        self, name: str, host: str, port: int, log_file: Path, ready_path: str = "/ready"
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.log_file = log_file
        self.ready_path = ready_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def probe_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self, environment: dict[str, str]) -> None:
        command = [sys.executable, "-m", "batch_gateway", self.name]
        command += ["--host", self.host, "--port", str(self.port)]
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            # A process group of its own: Ctrl-C in the terminal reaches `up` alone, which then
            # stops the components in order instead of all of them at once.
            self.process = subprocess.Popen(
                command,
                env={**os.environ, **environment},
                stdout=log,
                stderr=log,
                process_group=0,
            )

    def stop(self, grace: float) -> None:
        """SIGTERM, then up to `grace` seconds to exit cleanly, then SIGKILL."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def wait_until_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited at start; see {self.log_file}")
            try:
                with urllib.request.urlopen(
                    self.probe_url + self.ready_path, timeout=2
                ) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} was not ready within {READY_TIMEOUT_SECONDS:.0f}s")


class ComponentSet:
    """The stack's components. Without an inference URL, the simulator serves as downstream."""

    def __init__(
        self,
        environment: dict[str, str],
        host: str,
        api_port: int,
        log_dir: Path,
        inference_url: str | None,
    ) -> None:
        simulator = Component(
            "simulator", "127.0.0.1", free_port(), log_dir / "simulator.log", ready_path="/health"
        )
        self.inference_url = inference_url or simulator.probe_url
        self._environment = {**environment, INFERENCE_URL_VARIABLE: self.inference_url}
        self._components = [
            Component("apiserver", host, api_port, log_dir / "apiserver.log"),
            Component("projector", "127.0.0.1", free_port(), log_dir / "projector.log"),
            Component("processor", "127.0.0.1", free_port(), log_dir / "processor.log"),
            Component("gc", "127.0.0.1", free_port(), log_dir / "gc.log"),
        ]
        if inference_url is None:
            self._components.insert(0, simulator)
        self._running: list[Component] = []

    @property
    def environment(self) -> dict[str, str]:
        """What a component joining this stack needs (written to stack.env)."""
        return dict(self._environment)

    def start(self, exclude: set[str]) -> None:
        for component in self._components:
            if component.name not in exclude:
                component.start(self._environment)
                self._running.append(component)
        for component in self._running:
            component.wait_until_ready()

    def describe(self) -> list[str]:
        return [
            f"{c.name:<22} pid {c.process.pid if c.process else '-'}, "
            f"probes {c.probe_url}{c.ready_path}, log {c.log_file}"
            for c in self._running
        ]

    def wait(self) -> str:
        """Block until a component exits; return its name."""
        while True:
            for component in self._running:
                if component.process is not None and component.process.poll() is not None:
                    return component.name
            time.sleep(0.5)

    def stop(self) -> None:
        """Stop the components one at a time, in `STOP_ORDER`, each with its grace period."""
        for name in STOP_ORDER:
            for component in self._running:
                if component.name == name:
                    component.stop(self._grace(name))

    def _grace(self, name: str) -> float:
        if name != "processor":
            return STOP_GRACE_SECONDS
        try:
            settings = load_settings(ProcessorSettings, {**os.environ, **self._environment})
        except SettingsError:
            return STOP_GRACE_SECONDS  # it refused to start with these settings anyway
        return settings.shutdown_grace_seconds + PROCESSOR_STOP_MARGIN_SECONDS
