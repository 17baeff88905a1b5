"""A whole stack of real processes that faults can be done to: every component its own
`batch-gateway <component>` process, and Redis and PostgreSQL servers of its own (Redis with an
AOF written before each acknowledgement), so that killing or stopping any of them touches
nothing outside the test."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import cast

import redis

from batch_gateway.events.keys import StreamKeys
from batch_gateway.redis_client import CLUSTER_SUFFIX
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import CommonSettings, to_environment
from batch_gateway.stack.components import INFERENCE_URL_VARIABLE, Component
from batch_gateway.stack.postgres_server import EmbeddedPostgres
from batch_gateway.stack.redis_server import EmbeddedRedis, free_port
from batch_gateway.storage import StorageSettings
from tests.harness.seaweed_server import SeaweedS3

# Short enough that a killed processor's job is taken over within seconds.
PROCESSOR_ENVIRONMENT = {
    "BATCH_GATEWAY_LEASE_SECONDS": "3",
    "BATCH_GATEWAY_SHUTDOWN_GRACE_SECONDS": "3",
    "BATCH_GATEWAY_COMMIT_INTERVAL_SECONDS": "0.2",
    "BATCH_GATEWAY_CHUNK_SIZE": "50",
    "BATCH_GATEWAY_MAX_IN_FLIGHT": "32",
    "BATCH_GATEWAY_SWEEP_INTERVAL_SECONDS": "1",
    # A killed gc's lease passes to another within seconds.
    "BATCH_GATEWAY_LEADER_LEASE_SECONDS": "3",
}
# Requests take a while, so that faults land while work is in flight.
SIMULATOR_ENVIRONMENT = {"BATCH_GATEWAY_LATENCY_SECONDS": "0.01", "BATCH_GATEWAY_CAPACITY": "64"}


class ChaosStack:
    def __init__(self, work: Path, *, s3: bool = False, redis_url: str | None = None) -> None:
        self.work = work
        self.redis = EmbeddedRedis(work / "redis", extra_args=["--appendfsync", "always"])
        # A Redis (Cluster) the test started itself, instead of the stack's own server.
        self._redis_url = redis_url
        self.postgres = EmbeddedPostgres(work / "postgres")
        # Files in a real S3 server that can be taken down, or in a directory.
        self.seaweed = SeaweedS3(work / "seaweed") if s3 else None
        self.components: dict[str, Component] = {}
        self.environment: dict[str, str] = {}

    @property
    def api_url(self) -> str:
        return self.components["apiserver"].probe_url

    @property
    def settings(self) -> CommonSettings:
        storage = (
            self.seaweed.storage_settings()
            if self.seaweed is not None
            else StorageSettings(kind="filesystem", fs_root=str(self.work / "files"))
        )
        return CommonSettings(
            redis_url=self._redis_url or self.redis.url,
            postgres_url=self.postgres.url,
            storage=storage,
            secrets_key=self._secrets_key,
        )

    def stream_keys(self) -> StreamKeys:
        """The keys of the stack's log, as many partitions as its components were given."""
        partitions = int(self.environment.get("BATCH_GATEWAY_EVENT_PARTITIONS", "1"))
        return StreamKeys(self.settings.key_prefix, partitions)

    def redis_client(self) -> redis.Redis:
        """A synchronous client of the stack's Redis, a cluster client for a cluster."""
        url = self.settings.redis_url
        scheme, separator, rest = url.partition("://")
        if scheme.endswith(CLUSTER_SUFFIX):
            cluster_url = scheme.removesuffix(CLUSTER_SUFFIX) + separator + rest
            return cast(redis.Redis, redis.RedisCluster.from_url(cluster_url))
        return redis.Redis.from_url(url)

    def start(self, *extra: str, environment: dict[str, str] | None = None) -> None:
        """Servers, the simulator and one of each component; `extra` names more instances
        (`processor-2`, `projector-2`) of a component."""
        if self._redis_url is None:
            self.redis.start()
        self.postgres.start()
        if self.seaweed is not None:
            self.seaweed.start()
        self._secrets_key = new_secrets_key()
        simulator = self._component("simulator", ready_path="/health")
        self.environment = {
            **to_environment(self.settings),
            INFERENCE_URL_VARIABLE: simulator.probe_url,
            **PROCESSOR_ENVIRONMENT,
            **SIMULATOR_ENVIRONMENT,
            **(environment or {}),
        }
        names = ["simulator", "apiserver", "projector", "processor", "gc", *extra]
        for name in names:
            component = self.components.get(name) or self._component(name)
            component.start(self.environment)
        for name in names:
            self.components[name].wait_until_ready()

    def kill(self, name: str) -> None:
        """`kill -9` of a component: no shutdown, no last write."""
        process = self.components[name].process
        assert process is not None
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=10)

    def terminate(self, name: str) -> None:
        """SIGTERM, and wait for the component to stop by itself."""
        process = self.components[name].process
        assert process is not None
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 0, f"{name} did not exit cleanly on SIGTERM"

    def restart(self, name: str) -> None:
        component = self.components[name]
        component.start(self.environment)
        component.wait_until_ready()

    def run_gc_once(self, **environment: str) -> None:
        """`batch-gateway gc --once`, as cron would run it, until it gets the lease and acts
        (the lease of a gc killed a moment ago runs out first)."""
        command = [sys.executable, "-m", "batch_gateway", "gc", "--once", "--port", "0"]
        deadline = time.monotonic() + 30
        while True:
            result = subprocess.run(
                command,
                env={**os.environ, **self.environment, **environment},
                capture_output=True,
                timeout=120,
            )
            output = result.stderr.decode(errors="replace") + result.stdout.decode()
            assert result.returncode == 0, output[-3000:]
            if "this run did nothing" not in output:
                return
            assert time.monotonic() < deadline, "another gc kept the lease"
            time.sleep(0.5)

    def stop(self) -> None:
        for component in reversed(list(self.components.values())):
            component.stop(10)
        self.postgres.stop()
        if self._redis_url is None:
            self.redis.stop()
        if self.seaweed is not None:
            self.seaweed.stop()

    def log_of(self, name: str) -> str:
        log_file = self.components[name].log_file
        return log_file.read_text(errors="replace") if log_file.exists() else ""

    def logs(self) -> str:
        """The tail of every component's log, for a failing test to show."""
        parts = []
        for name, component in self.components.items():
            text = (
                component.log_file.read_text(errors="replace")
                if component.log_file.exists()
                else ""
            )
            parts.append(f"--- {name}\n" + "\n".join(text.splitlines()[-30:]))
        return "\n".join(parts)

    def _component(self, name: str, ready_path: str = "/ready") -> Component:
        command = name.split("-")[0]
        component = Component(
            command, "127.0.0.1", free_port(), self.work / "logs" / f"{name}.log", ready_path
        )
        self.components[name] = component
        return component


@contextlib.contextmanager
def chaos_stack(
    work: Path,
    *extra: str,
    environment: dict[str, str] | None = None,
    s3: bool = False,
    redis_url: str | None = None,
) -> Iterator[ChaosStack]:
    """A started stack (see `ChaosStack.start`); `environment` adds to every component's."""
    stack = ChaosStack(work, s3=s3, redis_url=redis_url)
    try:
        stack.start(*extra, environment=environment or {})
        yield stack
    finally:
        stack.stop()
