"""Through a live stack: what the gc expires is gone from the API and from storage."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import openai
import pytest
from openai import OpenAI

from batch_gateway.gc.component import run_gc
from batch_gateway.gc.settings import GcSettings
from batch_gateway.settings import settings_for
from batch_gateway.stack.redis_server import free_port
from batch_gateway.storage import StorageSettings, file_object_key, open_storage
from tests.gc.world import DAY, HOUR, ManualClock, requests
from tests.harness.batch_helpers import CHAT, upload, wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.sdk import sdk_client

WAIT_SECONDS = 10.0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"not within {WAIT_SECONDS}s: {what}"
        time.sleep(0.02)


def _gone(client: OpenAI, file_id: str) -> bool:
    try:
        client.files.retrieve(file_id)
    except openai.NotFoundError:
        return True
    return False


async def _gc_once(stack: LiveStack, clock: ManualClock) -> None:
    settings = settings_for(GcSettings, stack.settings, port=free_port())
    await run_gc(settings, asyncio.Event(), clock, once=True)


async def test_an_expired_file_is_404_and_its_bytes_are_gone(
    start_stack: StartStack, storage_settings: StorageSettings, tenant: str
) -> None:
    stack = start_stack(storage=storage_settings, with_processor=False)
    with sdk_client(stack, default_headers={stack.settings.tenant_header: tenant}) as client:
        doomed = client.files.create(
            file=("doomed.jsonl", b"{}\n"),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": HOUR},
        )
        kept = client.files.create(file=("kept.jsonl", b"{}\n"), purpose="user_data")
        assert doomed.expires_at == doomed.created_at + HOUR
        key = file_object_key(tenant, doomed.id)
        storage = await open_storage(storage_settings)
        try:
            clock = ManualClock(doomed.created_at + HOUR - 1)
            await _gc_once(stack, clock)
            assert client.files.retrieve(doomed.id) == doomed
            assert await storage.exists(key)

            clock.now = doomed.created_at + HOUR
            await _gc_once(stack, clock)
            assert not await storage.exists(key)
            _until(lambda: _gone(client, doomed.id), "the expiry reaches the API")
            assert [f.id for f in client.files.list()] == [kept.id]
            with pytest.raises(openai.NotFoundError):
                client.files.content(doomed.id)
            assert client.files.retrieve(kept.id) == kept
            assert await storage.exists(file_object_key(tenant, kept.id))
        finally:
            await storage.close()


async def test_an_unclaimed_batch_past_its_window_ends_expired(
    start_stack: StartStack, tenant: str
) -> None:
    # The stack's processor only validates: nothing ever claims the job.
    stack = start_stack()
    count = 7
    with sdk_client(stack, default_headers={stack.settings.tenant_header: tenant}) as client:
        input_id = upload(client, requests(count))
        batch = client.batches.create(
            input_file_id=input_id, endpoint=CHAT, completion_window="24h"
        )
        batch = wait_until_status(client, batch.id, {"in_progress"})

        await _gc_once(stack, ManualClock(batch.created_at + DAY - 1))
        assert client.batches.retrieve(batch.id).status == "in_progress"
        await _gc_once(stack, ManualClock(batch.created_at + DAY))

        final = wait_until_status(client, batch.id, {"expired"})
        assert final.expired_at is not None
        assert final.expired_at >= final.expires_at  # type: ignore[operator]
        assert final.output_file_id is None
        assert final.request_counts is not None
        assert (final.request_counts.total, final.request_counts.failed) == (count, count)
        assert final.error_file_id is not None
        content = client.files.content(final.error_file_id).text.splitlines()
        assert len(content) == count
        assert all('"code":"batch_expired"' in line for line in content)
