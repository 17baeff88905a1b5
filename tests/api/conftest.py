"""Clients of a live stack: the official OpenAI SDK, raw httpx, and stacks with custom settings.

Starting a stack takes a few tenths of a second, so the tests of one module share one
(`module_stack`) and each test is a tenant of its own there: tenants see nothing of each
other (tests/api/test_files_tenancy.py proves it on stacks of their own), so every test
still starts from an empty Files API. Tests that need other settings start their own stack.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import msgspec
import pytest
import redis.asyncio as aioredis
from openai import OpenAI

from batch_gateway.projections.database import drop_schema
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import ApiServerSettings
from batch_gateway.storage import StorageSettings
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.sdk import sdk_client


async def _remove_namespace(settings: ApiServerSettings) -> None:
    await drop_schema(settings.postgres_url, settings.postgres_schema)
    client = aioredis.Redis.from_url(settings.redis_url)
    try:
        pattern = f"{{{settings.key_prefix}}}*"
        keys = [key async for key in client.scan_iter(match=pattern, count=1000)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


@pytest.fixture(scope="module")
def module_stack(
    redis_url: str, postgres_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LiveStack]:
    settings = ApiServerSettings(
        redis_url=redis_url,
        postgres_url=postgres_url,
        postgres_schema=f"t_{uuid.uuid4().hex[:16]}",
        key_prefix=f"test-{uuid.uuid4().hex[:12]}",
        storage=StorageSettings(kind="filesystem", fs_root=str(tmp_path_factory.mktemp("files"))),
        secrets_key=new_secrets_key(),
    )
    try:
        with LiveStack(settings) as stack:
            yield stack
    finally:
        asyncio.run(_remove_namespace(settings))


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
    """Start a stack on this test's Redis prefix and schema, with some settings changed."""
    # `redis_client` is requested so that its teardown removes this test's keys afterwards.
    with contextlib.ExitStack() as stacks:

        def start(**changes: Any) -> LiveStack:
            return stacks.enter_context(LiveStack(msgspec.structs.replace(api_settings, **changes)))

        yield start
