"""Fixtures shared by the whole suite: real servers, and an isolated namespace per test."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.projections.database import drop_schema
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import ApiServerSettings
from batch_gateway.storage import StorageSettings
from tests.harness import services
from tests.harness.live_stack import LiveStack
from tests.harness.s3_server import S3Endpoint, running_s3_server


@pytest.fixture(scope="session")
def scratch_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


@pytest.fixture(scope="session")
def redis_url(scratch_dir: Path) -> Iterator[str]:
    with services.redis_url(scratch_dir) as url:
        yield url


@pytest.fixture(scope="session")
def postgres_url(scratch_dir: Path) -> Iterator[str]:
    with services.postgres_url(scratch_dir) as url:
        yield url


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[S3Endpoint]:
    with running_s3_server() as endpoint:
        yield endpoint


@pytest.fixture
def key_prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def redis_client(redis_url: str, key_prefix: str) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.Redis.from_url(redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{{{key_prefix}}}*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
def event_log(redis_client: aioredis.Redis, key_prefix: str) -> EventLog:
    return EventLog(redis_client, StreamKeys(key_prefix), system_clock)


@pytest.fixture
async def pg_schema(postgres_url: str) -> AsyncIterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield schema
    await drop_schema(postgres_url, schema)


@pytest.fixture
def api_settings(
    redis_url: str, postgres_url: str, pg_schema: str, key_prefix: str, tmp_path: Path
) -> ApiServerSettings:
    return ApiServerSettings(
        redis_url=redis_url,
        postgres_url=postgres_url,
        postgres_schema=pg_schema,
        key_prefix=key_prefix,
        storage=StorageSettings(kind="filesystem", fs_root=str(tmp_path / "files")),
        secrets_key=new_secrets_key(),
    )


@pytest.fixture
def live_stack(
    api_settings: ApiServerSettings, redis_client: aioredis.Redis
) -> Iterator[LiveStack]:
    # `redis_client` is requested so that its teardown removes this test's keys afterwards.
    with LiveStack(api_settings) as stack:
        yield stack
