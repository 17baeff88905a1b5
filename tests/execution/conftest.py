"""Fixtures of the execution tests: simulators in threads of their own, stacks whose processor
executes against them, SDK clients of a fresh tenant; and for the tests that drain executors
themselves, job queues of named consumers and a storage directory."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import pytest
import redis.asyncio as aioredis
from openai import OpenAI

from batch_gateway.clock import Clock, system_clock
from batch_gateway.events import EventLog
from batch_gateway.processors.component import MAX_DELIVERIES
from batch_gateway.processors.execution.executor import batch_opening
from batch_gateway.processors.execution.job_queue import JobQueue
from batch_gateway.simulator import SimulatorSettings
from batch_gateway.storage import FilesystemStorage
from tests.execution.queued_jobs import LEASE_MS
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.sdk import sdk_client
from tests.harness.simulator_thread import SimulatorThread

# Fast retries: the tests wait for backoff, not for realism.
FAST_RETRIES: dict[str, Any] = {"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05}


MakeQueue = Callable[[str], JobQueue]


class StartSimulator(Protocol):
    def __call__(self, **settings: Any) -> SimulatorThread: ...


class StartExecuting(Protocol):
    def __call__(self, *, clock: Clock = ..., **processor_overrides: Any) -> LiveStack: ...


class ClientOf(Protocol):
    def __call__(self, stack: LiveStack) -> OpenAI: ...


@pytest.fixture
def start_simulator() -> Iterator[StartSimulator]:
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> SimulatorThread:
            values: dict[str, Any] = {"port": 0, **settings}
            return stack.enter_context(SimulatorThread(SimulatorSettings(**values)))

        yield start


@pytest.fixture
def start_executing(start_stack: StartStack) -> StartExecuting:
    """A stack whose processor validates and executes, with fast commits and retries; the
    overrides name the gateways (`global_inference_gateway`, `model_gateways`) and the rest;
    `clock` is the time of the API and the processor."""

    def start(*, clock: Clock = system_clock, **processor_overrides: Any) -> LiveStack:
        overrides: dict[str, Any] = {
            "roles": ["validate", "execute"],
            "commit_interval_seconds": 0.1,
            **FAST_RETRIES,
            **processor_overrides,
        }
        return start_stack(processor_overrides=overrides, clock=clock)

    return start


@pytest.fixture
def client_of() -> Iterator[ClientOf]:
    """An SDK client of a new tenant on a given stack."""
    with contextlib.ExitStack() as clients:

        def make(stack: LiveStack) -> OpenAI:
            headers = {stack.settings.tenant_header: f"tenant-{uuid.uuid4().hex[:12]}"}
            return clients.enter_context(sdk_client(stack, default_headers=headers))

        yield make


@pytest.fixture
def queue_of(redis_client: aioredis.Redis, event_log: EventLog) -> MakeQueue:
    """The job queue as the named consumer sees it, with a lease of LEASE_MS."""

    def make(consumer: str) -> JobQueue:
        return JobQueue(
            redis_client,
            event_log.keys,
            consumer,
            lease_ms=LEASE_MS,
            max_deliveries=MAX_DELIVERIES,
            describe=batch_opening(event_log),
        )

    return make


@pytest.fixture
def objects(tmp_path: Path) -> Path:
    """Where the drained executors' storage keeps its objects."""
    return tmp_path / "objects"


@pytest.fixture
async def storage(objects: Path) -> AsyncIterator[FilesystemStorage]:
    filesystem = FilesystemStorage(objects)
    await filesystem.open()
    yield filesystem
    await filesystem.close()
