"""The projector component: what `batch-gateway projector` runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import NamedTuple

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.archive import EventArchive
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.probe_server import ProbeServer
from batch_gateway.projections.checkpoint import PROJECTION_NAME
from batch_gateway.projections.database import open_pool
from batch_gateway.projections.metrics import ProjectionGauges
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.projector import Projector
from batch_gateway.redis_client import open_redis
from batch_gateway.settings import ProjectorSettings
from batch_gateway.storage import open_storage

logger = logging.getLogger(__name__)


class _Parts(NamedTuple):
    client: aioredis.Redis
    pool: AsyncConnectionPool
    projector: Projector


@contextlib.asynccontextmanager
async def _projector(settings: ProjectorSettings, *, following: bool) -> AsyncIterator[_Parts]:
    """A migrated schema and a projector over the log and its archive; one that is
    `following` the log registers its position, so the gc trims only behind it."""
    await migrate(settings.postgres_url, settings.postgres_schema)
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        pool = await open_pool(settings.postgres_url, settings.postgres_schema, max_size=2)
        stack.push_async_callback(pool.close)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        keys = StreamKeys(settings.key_prefix)
        log = EventLog(client, keys, system_clock, EventArchive(storage))
        retention = settings.event_retention_seconds
        readers = LogReaders(client, keys, stale_after_seconds=retention) if following else None
        projector = Projector(
            log, pool, settings.postgres_schema, batch_size=settings.batch_size, readers=readers
        )
        yield _Parts(client, pool, projector)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Migrate, then follow the log into PostgreSQL until `stop` is set."""
    async with _projector(settings, following=True) as (client, pool, projector):

        async def postgres_answers() -> None:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")

        probes = ProbeServer(
            settings.host, settings.port, {"redis": client.ping, "postgres": postgres_answers}
        )
        await probes.start()
        keys = StreamKeys(settings.key_prefix)
        try:
            logger.info(
                "projector following %s from %s", keys.global_stream, await projector.position()
            )
            gauges = ProjectionGauges(client, keys, pool, PROJECTION_NAME)
            async with asyncio.TaskGroup() as group:
                group.create_task(projector.run(stop))
                group.create_task(gauges.run(stop))
        finally:
            await probes.close()
        logger.info("projector stopped")


async def rebuild_projection(settings: ProjectorSettings) -> None:
    """Fold the whole history, the archive's and then Redis's, into `settings.postgres_schema`
    (a fresh schema: its projections then equal the live ones), and return."""
    async with _projector(settings, following=False) as (_, _, projector):
        started = await projector.position()
        applied = await projector.drain()
        logger.info(
            "projected %d events into schema %s (from %s to %s)",
            applied, settings.postgres_schema, started, await projector.position(),
        )  # fmt: skip
