"""Raw rows of the projection tables, every column, to compare two schemas or two moments."""

from __future__ import annotations

from typing import Any, LiteralString

from psycopg_pool import AsyncConnectionPool

Rows = list[tuple[Any, ...]]


async def select_all(pool: AsyncConnectionPool, query: LiteralString) -> Rows:
    async with pool.connection() as conn:
        cursor = await conn.execute(query)
        return await cursor.fetchall()


async def file_rows(pool: AsyncConnectionPool) -> Rows:
    """Every row of `files`, tombstones included."""
    return await select_all(pool, "SELECT * FROM files ORDER BY id")


async def checkpoint_rows(pool: AsyncConnectionPool) -> Rows:
    return await select_all(pool, "SELECT * FROM checkpoints ORDER BY projection")
