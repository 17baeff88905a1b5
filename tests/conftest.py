"""Fixtures shared by the whole suite: real servers, an isolated namespace per test, and live
stacks with their clients (the official OpenAI SDK, raw httpx).

Starting a stack takes a few tenths of a second, so the tests of one module share one
(`module_stack`) and each test is a tenant of its own there: tenants see nothing of each
other (tests/api/test_files_tenancy.py and tests/batches/test_batches_tenancy.py prove it), so
every test still starts from an empty API. Tests that need other settings start their own
stack (`start_stack`).
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from openai import OpenAI
from psycopg_pool import AsyncConnectionPool

from batch_gateway.clock import Clock, system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.projections.database import drop_schema, open_pool
from batch_gateway.projections.migrations import migrate
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.storage import StorageSettings
from tests.harness import services
from tests.harness.live_stack import LiveStack, StartStack, isolated_stack
from tests.harness.s3_server import S3Endpoint, running_s3_server
from tests.harness.sdk import sdk_client


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
async def pool(postgres_url: str, pg_schema: str) -> AsyncIterator[AsyncConnectionPool]:
    """A pool on this test's schema (`pg_schema`), migrated."""
    await migrate(postgres_url, pg_schema)
    pool = await open_pool(postgres_url, pg_schema, max_size=4)
    yield pool
    await pool.close()


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


@pytest.fixture(scope="module")
def module_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    with isolated_stack(redis_url, postgres_url, tmp_path_factory.mktemp("files")) as stack:
        yield stack


@pytest.fixture
def tenant() -> str:
    return f"tenant-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def client(module_stack: LiveStack, tenant: str) -> Iterator[OpenAI]:
    headers = {module_stack.settings.tenant_header: tenant}
    with sdk_client(module_stack, default_headers=headers) as openai_client:
        yield openai_client


@pytest.fixture
def http(module_stack: LiveStack, tenant: str) -> Iterator[httpx.Client]:
    headers = {module_stack.settings.tenant_header: tenant}
    with httpx.Client(base_url=module_stack.base_url, headers=headers) as http_client:
        yield http_client


@pytest.fixture
def start_stack(
    api_settings: ApiServerSettings, redis_client: aioredis.Redis
) -> Iterator[StartStack]:
    """Start a stack on this test's Redis prefix and schema, with some settings changed;
    `processor_overrides`, `with_processor` and `clock` go to `LiveStack` itself."""
    # `redis_client` is requested so that its teardown removes this test's keys afterwards.
    with contextlib.ExitStack() as stacks:

        def start(
            *,
            processor_overrides: dict[str, Any] | None = None,
            with_processor: bool = True,
            clock: Clock = system_clock,
            **changes: Any,
        ) -> LiveStack:
            stack = LiveStack(
                msgspec.structs.replace(api_settings, **changes),
                clock,
                processor_overrides=processor_overrides,
                with_processor=with_processor,
            )
            return stacks.enter_context(stack)

        yield start
