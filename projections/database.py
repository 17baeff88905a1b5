"""Connections to PostgreSQL, scoped to one schema.

Every projection table lives in the schema named by settings, set as the connection's
`search_path`, so the SQL stays unqualified and a second schema is an independent copy
(tests use one each; a rebuild writes into a fresh one).
"""

from __future__ import annotations

import psycopg
from psycopg import sql
from psycopg.rows import TupleRow
from psycopg_pool import AsyncConnectionPool

from batch_gateway.errors import Unavailable


def connection_options(schema: str) -> dict[str, str]:
    return {"options": f"-c search_path={schema}"}


async def open_pool(url: str, schema: str, *, max_size: int = 10) -> AsyncConnectionPool:
    """Open a pool whose connections see `schema` first; waits until one connection works."""
    pool = AsyncConnectionPool(
        url,
        kwargs=connection_options(schema),
        min_size=1,
        max_size=max_size,
        open=False,
        name=f"batch-gateway-{schema}",
    )
    try:
        await pool.open(wait=True, timeout=30)
    except psycopg.OperationalError as error:
        await pool.close()
        raise Unavailable(f"PostgreSQL at {_safe(url)} does not answer: {error}") from error
    return pool


async def connect(url: str, schema: str) -> psycopg.AsyncConnection[TupleRow]:
    """A dedicated autocommit connection (migrations, LISTEN), outside the pool."""
    try:
        return await psycopg.AsyncConnection.connect(
            url, autocommit=True, options=connection_options(schema)["options"]
        )
    except psycopg.OperationalError as error:
        raise Unavailable(f"PostgreSQL at {_safe(url)} does not answer: {error}") from error


async def drop_schema(url: str, schema: str) -> None:
    async with await connect(url, "public") as conn:
        await conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def _safe(url: str) -> str:
    """The URL without its password, for messages and logs."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "<unparseable URL>"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
