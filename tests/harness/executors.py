"""Executors wired as `processors/component.py` wires them, for tests that drain them.

`executor_for(settings, clock)` opens what a processor would (Redis, storage, the dispatcher)
and yields an `Executor` whose `drain()` runs every queued job to its end; the clock is the
test's, so a test moves time instead of waiting for it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator

import redis.asyncio as aioredis

from batch_gateway.clock import Clock, system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.processors.component import job_queue
from batch_gateway.processors.execution.dispatch import Dispatcher
from batch_gateway.processors.execution.executor import Executor
from batch_gateway.processors.execution.job import JobContext
from batch_gateway.processors.execution.routing import Routes
from batch_gateway.processors.settings import ProcessorSettings
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.storage import ObjectStorage, open_storage


class ShiftedClock:
    """The system clock, moved by `offset` seconds (which a test may change at any time)."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def __call__(self) -> float:
        return time.time() + self.offset


@contextlib.asynccontextmanager
async def executor_for(
    settings: ProcessorSettings,
    clock: Clock = system_clock,
    *,
    storage: ObjectStorage | None = None,
) -> AsyncIterator[Executor]:
    """An executor of `settings`; its jobs use `storage` when given (one that fails, say)."""
    client = aioredis.Redis.from_url(settings.redis_url)
    opened = await open_storage(settings.storage)
    dispatcher = Dispatcher(settings)
    try:
        keys = StreamKeys(settings.key_prefix)
        log = EventLog(client, keys, clock)
        context = JobContext(
            log=log,
            storage=opened if storage is None else storage,
            dispatcher=dispatcher,
            routes=Routes(settings),
            secrets=SecretStore(client, keys, load_secrets_key(settings.secrets_key)),
            settings=settings,
            clock=clock,
            processor=settings.name,
        )
        yield Executor(job_queue(client, log, settings), context)
    finally:
        await dispatcher.close()
        await opened.close()
        await client.aclose()
