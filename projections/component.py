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
from batch_gateway.events.log_readers import LogReaders
from batch_gateway.ids import instance_name
from batch_gateway.probe_server import ProbeServer
from batch_gateway.projections.database import open_pool
from batch_gateway.projections.metrics import ProjectionGauges
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.partition_claims import PartitionClaims
from batch_gateway.projections.projector import Projector
from batch_gateway.projections.settings import ProjectorSettings
from batch_gateway.redis_client import open_redis, settle
from batch_gateway.storage import open_storage

logger = logging.getLogger(__name__)


class _Parts(NamedTuple):
    client: aioredis.Redis
    pool: AsyncConnectionPool
    log: EventLog
    readers: LogReaders | None

    def projector(self, settings: ProjectorSettings, partition: int) -> Projector:
        return Projector(
            self.log,
            self.pool,
            settings.postgres_schema,
            batch_size=settings.batch_size,
            readers=self.readers,
            partition=partition,
        )


@contextlib.asynccontextmanager
async def _projection(settings: ProjectorSettings, *, following: bool) -> AsyncIterator[_Parts]:
    """A migrated schema, and the log with its archive; a projector `following` the log
    registers its position, so the gc trims only behind it."""
    await migrate(settings.postgres_url, settings.postgres_schema)
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        await settle(client)
        pool = await open_pool(settings.postgres_url, settings.postgres_schema, max_size=2)
        stack.push_async_callback(pool.close)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        keys = settings.stream_keys()
        log = EventLog(client, keys, system_clock, EventArchive(storage))
        retention = settings.event_retention_seconds
        readers = LogReaders(client, keys, stale_after_seconds=retention) if following else None
        yield _Parts(client, pool, log, readers)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Migrate, then follow the partitions of the log this projector claims (all of them,
    unless other projectors share them) into PostgreSQL until `stop` is set."""
    async with _projection(settings, following=True) as parts:

        async def postgres_answers() -> None:
            async with parts.pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")

        probes = ProbeServer(
            settings.host, settings.port, {"redis": parts.client.ping, "postgres": postgres_answers}
        )
        await probes.start()
        running: dict[int, tuple[asyncio.Event, asyncio.Task[None]]] = {}

        async def claim(partition: int) -> None:
            projector = parts.projector(settings, partition)
            stream = parts.log.keys.partition_stream(partition)
            logger.info("projector following %s from %s", stream, await projector.position())
            halt = asyncio.Event()
            running[partition] = (halt, asyncio.create_task(projector.run(halt)))

        async def release(partition: int) -> None:
            halt, task = running.pop(partition)
            halt.set()
            await task
            logger.info("projector let go of partition %d", partition)

        claims = PartitionClaims(
            settings.postgres_url,
            settings.postgres_schema,
            parts.client,
            parts.log.keys,
            instance_name(),
            on_claim=claim,
            on_release=release,
        )
        try:
            gauges = ProjectionGauges(parts.client, parts.log.keys, parts.pool)
            async with asyncio.TaskGroup() as group:
                group.create_task(claims.run(stop))
                group.create_task(gauges.run(stop))
        finally:
            await probes.close()
        logger.info("projector stopped")


async def rebuild_projection(settings: ProjectorSettings) -> None:
    """Fold the whole history, the archive's and then Redis's, into `settings.postgres_schema`
    (a fresh schema: its projections then equal the live ones), and return."""
    async with _projection(settings, following=False) as parts:
        for partition in parts.log.keys.every_partition:
            projector = parts.projector(settings, partition)
            started = await projector.position()
            applied = await projector.drain()
            logger.info(
                "projected %d events of partition %d into schema %s (from %s to %s)",
                applied, partition, settings.postgres_schema, started, await projector.position(),
            )  # fmt: skip
