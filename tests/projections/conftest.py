"""Projection fixtures: migrated schemas of their own, pools on them, a projector."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import EventLog
from batch_gateway.projections.database import drop_schema, open_pool
from batch_gateway.projections.file_queries import FileQueries
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.projector import Projector

OpenSchema = Callable[[], Awaitable[tuple[str, AsyncConnectionPool]]]


@pytest.fixture
async def open_schema(postgres_url: str) -> AsyncIterator[OpenSchema]:
    """Migrate a fresh schema and open a pool on it; each is dropped after the test."""
    opened: list[tuple[str, AsyncConnectionPool]] = []

    async def open_one() -> tuple[str, AsyncConnectionPool]:
        schema = f"t_{uuid.uuid4().hex[:16]}"
        await migrate(postgres_url, schema)
        pool = await open_pool(postgres_url, schema, max_size=4)
        opened.append((schema, pool))
        return schema, pool

    yield open_one
    for schema, pool in opened:
        await pool.close()
        await drop_schema(postgres_url, schema)


@pytest.fixture
def projector(event_log: EventLog, pool: AsyncConnectionPool, pg_schema: str) -> Projector:
    return Projector(event_log, pool, pg_schema)


@pytest.fixture
def queries(pool: AsyncConnectionPool) -> FileQueries:
    return FileQueries(pool)
