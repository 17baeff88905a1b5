"""The projector component: what `batch-gateway projector` runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.probe_server import ProbeServer
from batch_gateway.projections.checkpoint import PROJECTION_NAME
from batch_gateway.projections.database import open_pool
from batch_gateway.projections.metrics import ProjectionGauges
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.projector import Projector
from batch_gateway.redis_client import open_redis
from batch_gateway.settings import ProjectorSettings

logger = logging.getLogger(__name__)


async def run_projector(settings: ProjectorSettings, stop: asyncio.Event) -> None:
    """Migrate, then follow the log into PostgreSQL until `stop` is set."""
    await migrate(settings.postgres_url, settings.postgres_schema)
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        pool = await open_pool(settings.postgres_url, settings.postgres_schema, max_size=2)
        stack.push_async_callback(pool.close)
        log = EventLog(client, StreamKeys(settings.key_prefix), system_clock)
        projector = Projector(log, pool, settings.postgres_schema, batch_size=settings.batch_size)

        async def postgres_answers() -> None:
            async with pool.connection(timeout=2) as conn:
                await conn.execute("SELECT 1")

        probes = ProbeServer(
            settings.host, settings.port, {"redis": client.ping, "postgres": postgres_answers}
        )
        await probes.start()
        stack.push_async_callback(probes.close)
        logger.info(
            "projector following %s from %s", log.keys.global_stream, await projector.position()
        )
        gauges = ProjectionGauges(client, log.keys, pool, PROJECTION_NAME)
        async with asyncio.TaskGroup() as group:
            group.create_task(projector.run(stop))
            group.create_task(gauges.run(stop))
        logger.info("projector stopped")
