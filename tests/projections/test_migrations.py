"""Migrations: a numbered list, applied once, safely from many processes at once."""

from __future__ import annotations

import asyncio

import pytest
from psycopg import sql

from batch_gateway.projections.database import connect, drop_schema
from batch_gateway.projections.migrations import MIGRATIONS, DatabaseTooNew, migrate


async def _applied(url: str, schema: str) -> list[tuple[int, str]]:
    async with await connect(url, schema) as conn:
        cursor = await conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
        return [(int(version), str(name)) for version, name in await cursor.fetchall()]


async def _tables(url: str, schema: str) -> set[str]:
    async with await connect(url, schema) as conn:
        cursor = await conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = %s", (schema,)
        )
        return {str(name) for (name,) in await cursor.fetchall()}


def test_migrations_are_numbered_from_one_without_gaps() -> None:
    assert [number for number, _, _ in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


async def test_migrate_creates_the_schema_and_records_every_step(
    postgres_url: str, pg_schema: str
) -> None:
    assert await migrate(postgres_url, pg_schema) == len(MIGRATIONS)
    assert await _applied(postgres_url, pg_schema) == [
        (number, name) for number, name, _ in MIGRATIONS
    ]
    assert {"schema_migrations", "checkpoints", "files"} <= await _tables(postgres_url, pg_schema)


async def test_migrate_is_idempotent(postgres_url: str, pg_schema: str) -> None:
    await migrate(postgres_url, pg_schema)
    applied = await _applied(postgres_url, pg_schema)
    tables = await _tables(postgres_url, pg_schema)

    assert await migrate(postgres_url, pg_schema) == len(MIGRATIONS)
    assert await migrate(postgres_url, pg_schema) == len(MIGRATIONS)

    assert await _applied(postgres_url, pg_schema) == applied
    assert await _tables(postgres_url, pg_schema) == tables


async def test_concurrent_migrations_of_one_schema_all_succeed(
    postgres_url: str, pg_schema: str
) -> None:
    versions = await asyncio.gather(*(migrate(postgres_url, pg_schema) for _ in range(5)))
    assert versions == [len(MIGRATIONS)] * 5
    assert len(await _applied(postgres_url, pg_schema)) == len(MIGRATIONS)


async def test_a_schema_migrated_by_newer_code_is_refused(
    postgres_url: str, pg_schema: str
) -> None:
    await migrate(postgres_url, pg_schema)
    newer = len(MIGRATIONS) + 1
    async with await connect(postgres_url, pg_schema) as conn:
        await conn.execute(
            "INSERT INTO schema_migrations (version, name) VALUES (%s, 'from_the_future')",
            (newer,),
        )

    with pytest.raises(DatabaseTooNew, match=f"at migration {newer}"):
        await migrate(postgres_url, pg_schema)
    # Refusing released the lock: the next attempt refuses again instead of hanging.
    with pytest.raises(DatabaseTooNew):
        await asyncio.wait_for(migrate(postgres_url, pg_schema), 5)
    assert (newer, "from_the_future") in await _applied(postgres_url, pg_schema)


async def test_schemas_are_independent(postgres_url: str, pg_schema: str) -> None:
    await migrate(postgres_url, pg_schema)
    other = f"{pg_schema}_b"
    try:
        await migrate(postgres_url, other)
        async with await connect(postgres_url, pg_schema) as conn:
            await conn.execute(
                sql.SQL("INSERT INTO {}.checkpoints VALUES ('x', 1, 2)").format(
                    sql.Identifier(pg_schema)
                )
            )
        async with await connect(postgres_url, other) as conn:
            cursor = await conn.execute("SELECT count(*) FROM checkpoints")
            assert await cursor.fetchone() == (0,)
    finally:
        await drop_schema(postgres_url, other)
