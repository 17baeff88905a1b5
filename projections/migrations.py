"""Schema migrations: a numbered list of SQL files applied in order under an advisory lock.

Every component that reads or writes projections migrates at start; the advisory lock
makes concurrent starts safe, and a database migrated by newer code is refused rather
than misread.
"""

from __future__ import annotations

import zlib
from importlib import resources

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow

from batch_gateway.errors import BatchGatewayError
from batch_gateway.projections.database import connect


def _load_migrations() -> list[tuple[int, str, str]]:
    folder = resources.files("batch_gateway.projections").joinpath("migrations")
    found = []
    for entry in folder.iterdir():
        if entry.name.endswith(".sql"):
            number, _, name = entry.name.removesuffix(".sql").partition("_")
            found.append((int(number), name, entry.read_text()))
    found.sort()
    if [number for number, _, _ in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("migrations must be numbered 1, 2, 3, ... without gaps")
    return found


MIGRATIONS = _load_migrations()


class DatabaseTooNew(BatchGatewayError):
    """The schema was migrated by a newer release than this one."""


async def migrate(url: str, schema: str) -> int:
    """Bring `schema` up to the newest migration; returns the version it is at."""
    lock_key = zlib.crc32(f"batch-gateway-migrations:{schema}".encode())
    async with await connect(url, schema) as conn:
        await conn.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
        try:
            return await _apply_pending(conn, schema)
        finally:
            await conn.execute("SELECT pg_advisory_unlock(%s)", (lock_key,))


async def _apply_pending(conn: psycopg.AsyncConnection[TupleRow], schema: str) -> int:
    await conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
    await conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version integer PRIMARY KEY, name text NOT NULL,"
        " applied_at timestamptz NOT NULL DEFAULT now())"
    )
    cursor = await conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations")
    row = await cursor.fetchone()
    current = int(row[0]) if row else 0
    if current > len(MIGRATIONS):
        raise DatabaseTooNew(
            f"schema {schema!r} is at migration {current}, this release knows {len(MIGRATIONS)}"
        )
    for number, name, text in MIGRATIONS[current:]:
        async with conn.transaction():
            await conn.execute(text.encode())
            await conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)", (number, name)
            )
    return len(MIGRATIONS)
