"""What the API server holds open while it runs, opened and closed by the app's lifespan."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import redis.asyncio as aioredis
from psycopg_pool import AsyncConnectionPool

from batch_gateway.clock import Clock
from batch_gateway.events import EventLog
from batch_gateway.events.archive import EventArchive
from batch_gateway.events.raw_log import RawLog
from batch_gateway.gateway.batch_commands import BatchCommands
from batch_gateway.gateway.event_fanout import EventFanout, EventReads
from batch_gateway.gateway.file_commands import FileCommands
from batch_gateway.gateway.idempotency import IdempotencyKeys
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.projections.batch_queries import BatchQueries
from batch_gateway.projections.database import open_pool
from batch_gateway.projections.file_queries import FileQueries
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.waiter import ProjectionWaiter
from batch_gateway.redis_client import open_redis, settle
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.storage import ObjectStorage, open_storage


@dataclass(frozen=True)
class ApiServices:
    settings: ApiServerSettings
    redis: aioredis.Redis
    pool: AsyncConnectionPool
    storage: ObjectStorage
    log: EventLog
    file_commands: FileCommands
    file_queries: FileQueries
    batch_commands: BatchCommands
    batch_queries: BatchQueries
    event_fanout: EventFanout
    event_reads: EventReads


def pass_through_headers(settings: ApiServerSettings) -> list[str]:
    """The headers to capture at create. With API keys, `Authorization` carries the caller's
    key to this gateway, which must never travel on to inference servers (ADR 0009)."""
    names = settings.batches.pass_through_headers
    if settings.api_keys:
        return [name for name in names if name.lower() != "authorization"]
    return list(names)


@contextlib.asynccontextmanager
async def open_api_services(
    settings: ApiServerSettings, clock: Clock
) -> AsyncIterator[ApiServices]:
    await migrate(settings.postgres_url, settings.postgres_schema)
    async with contextlib.AsyncExitStack() as stack:
        client = open_redis(settings.redis_url)
        stack.push_async_callback(client.aclose)
        await settle(client)
        pool = await open_pool(settings.postgres_url, settings.postgres_schema)
        stack.push_async_callback(pool.close)
        storage = await open_storage(settings.storage)
        stack.push_async_callback(storage.close)
        waiter = ProjectionWaiter(
            settings.postgres_url, settings.postgres_schema, pool, keys=settings.stream_keys()
        )
        await waiter.start()
        stack.push_async_callback(waiter.close)
        keys = settings.stream_keys()
        archive = EventArchive(storage)
        log = EventLog(client, keys, clock, archive)
        secrets = SecretStore(client, keys, load_secrets_key(settings.secrets_key))
        idempotency = IdempotencyKeys(client, keys, settings.batches.idempotency_ttl_seconds)
        streams = settings.event_stream
        raw_log = RawLog(client, keys, archive)
        fanout = EventFanout(
            raw_log,
            block_seconds=streams.block_seconds,
            buffered_events=streams.buffered_events,
            max_subscribers=streams.max_subscribers,
        )
        await fanout.start()
        stack.push_async_callback(fanout.close)
        yield ApiServices(
            settings=settings,
            redis=client,
            pool=pool,
            storage=storage,
            log=log,
            file_commands=FileCommands(
                log, storage, waiter, settings.files, clock, settings.projection_wait_seconds
            ),
            file_queries=FileQueries(pool),
            batch_commands=BatchCommands(
                log,
                waiter,
                secrets,
                idempotency,
                pass_through_headers(settings),
                clock,
                settings.projection_wait_seconds,
            ),
            batch_queries=BatchQueries(pool),
            event_fanout=fanout,
            event_reads=EventReads(raw_log, streams.max_concurrent_reads),
        )
