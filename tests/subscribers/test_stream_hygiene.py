"""What event streams must never do: leak a secret, or leave anything behind when a client
goes away; and how they bound what a crowd of slow or numerous clients can cost."""

from __future__ import annotations

import asyncio
import contextlib
import time

import httpx
import redis
from openai import OpenAI

from batch_gateway.events.envelope import StreamId
from batch_gateway.events.raw_log import RawEntry
from batch_gateway.gateway.event_fanout import Subscription
from batch_gateway.gateway.settings import EventStreamSettings
from tests.harness.batch_helpers import validated, wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.openai_errors import error_of
from tests.harness.sdk import sdk_client
from tests.harness.sse import read_stream, stream_entries, subscriber_gauge

SECRET = "sk-pass-through-7f3a9c1e5b"


def test_no_pass_through_secret_reaches_the_stream_or_the_log(
    module_stack: LiveStack, tenant: str, http: httpx.Client
) -> None:
    headers = {module_stack.settings.tenant_header: tenant}
    # No API keys on this stack: the SDK's Authorization header is captured for pass-through.
    with sdk_client(module_stack, api_key=SECRET, default_headers=headers) as client:
        batch = validated(client)
        client.batches.cancel(batch.id)
        wait_until_status(client, batch.id, {"cancelled"})

    body = read_stream(http, batch.id)

    assert '"pass_through_headers":["authorization"]' in body.frames[0].data
    assert SECRET.encode() not in body.raw
    stored = redis.Redis.from_url(module_stack.settings.redis_url)
    try:
        prefix = module_stack.settings.key_prefix
        for key in stored.scan_iter(match=f"{{{prefix}}}:*", _type="stream"):
            for _, fields in stream_entries(stored, key):
                assert SECRET.encode() not in b"".join(fields.values()), key
    finally:
        stored.close()


def test_clients_that_disconnect_leave_no_subscriber_behind(
    client: OpenAI, http: httpx.Client, module_stack: LiveStack
) -> None:
    batch = validated(client)
    before = subscriber_gauge(http)
    with contextlib.ExitStack() as streams:
        # Each line iterator is kept: dropping one would close its connection at once.
        readers = []
        for _ in range(5):
            response = streams.enter_context(
                http.stream("GET", f"/v1/batches/{batch.id}/events", timeout=10)
            )
            readers.append(response.iter_lines())
            assert next(readers[-1]).startswith("id: ")
        assert subscriber_gauge(http) == before + 5
    # The connections are closed; the server notices and closes each stream's generator.
    deadline = time.monotonic() + 5
    while subscriber_gauge(http) != before:
        assert time.monotonic() < deadline, "streams outlived their clients"
        time.sleep(0.05)


def test_a_server_serving_its_maximum_refuses_more_streams(start_stack: StartStack) -> None:
    stack = start_stack(event_stream=EventStreamSettings(max_subscribers=1))
    with sdk_client(stack) as client, httpx.Client(base_url=stack.base_url) as http:
        batch = validated(client)
        with http.stream("GET", f"/v1/batches/{batch.id}/events", timeout=10) as first:
            lines = first.iter_lines()
            assert next(lines).startswith("id: ")
            error_of(http.get(f"/v1/batches/{batch.id}/events"), 503)


def entry(ms: int) -> RawEntry:
    return RawEntry(StreamId(ms, 0), "batch.progress", b"{}")


async def test_a_slow_reader_is_told_to_reread_instead_of_buffering_without_bound() -> None:
    subscription = Subscription("batch_x", limit=3)
    for ms in range(1, 4):
        subscription.deliver(entry(ms))
    assert await subscription.wait(0.01)
    assert subscription.take() == ([entry(1), entry(2), entry(3)], False)
    assert not await subscription.wait(0.01)

    for ms in range(4, 9):
        subscription.deliver(entry(ms))

    # Past the limit nothing more is held: the stream re-reads the batch's stream instead.
    assert await subscription.wait(0.01)
    assert subscription.take() == ([], True)
    subscription.deliver(entry(9))
    assert subscription.take() == ([entry(9)], False)
    await asyncio.sleep(0)
