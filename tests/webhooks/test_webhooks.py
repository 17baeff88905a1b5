"""The webhook deliverer in drain mode, against Redis and a real HTTP receiver."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from typing import cast

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import Event, EventLog
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
    RequestCounts,
    Usage,
)
from batch_gateway.events.envelope import Recorded
from batch_gateway.processors.consumer_group import Entry
from batch_gateway.processors.webhooks.deliverer import GROUP
from tests.webhooks.conftest import KEY, Crash, MakeDeliverer, Received, Receiver

TENANT = "acme-secret-tenant"
COMPLETED = BatchCompleted(
    completed_at=1_700_000_100,
    request_counts=RequestCounts(total=2, completed=2),
    usage=Usage(),
    output_file_id="file-out",
)


async def _append(log: EventLog, batch_id: str, *events: Event) -> list[Recorded]:
    version = await log.version(batch_id)
    return await log.append(batch_id, TENANT, version, list(events))


def _expected_signature(request: Received) -> str:
    """Standard Webhooks, computed here independently of the deliverer's own code."""
    headers = request.headers
    content = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + request.body
    return "v1," + base64.b64encode(hmac.new(KEY, content, hashlib.sha256).digest()).decode()


async def _pending(client: aioredis.Redis, log: EventLog) -> int:
    summary = await client.xpending(log.keys.global_stream, GROUP)
    return int(summary["pending"])


async def _dead_letters(client: aioredis.Redis, log: EventLog) -> list[dict[bytes, bytes]]:
    entries = cast(list[Entry], await client.xrange(f"{log.keys.tag}:dead-letter"))
    return [fields for _, fields in entries]


async def test_a_terminal_event_is_posted_signed_in_openais_shape(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    deliverer = make_deliverer()
    await deliverer.drain()  # the group starts at the end of the log
    [recorded] = await _append(event_log, "batch_1", COMPLETED)
    assert await deliverer.drain() == 1

    [request] = receiver.requests
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == recorded.envelope.event_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 60
    assert request.headers["webhook-signature"] == _expected_signature(request)
    assert json.loads(request.body) == {
        "id": recorded.envelope.event_id,
        "object": "event",
        "created_at": int(recorded.envelope.occurred_at),
        "type": "batch.completed",
        "data": {"id": "batch_1"},
    }
    assert TENANT.encode() not in request.body
    assert await _pending(event_log._redis, event_log) == 0


@pytest.mark.parametrize(
    "event",
    [
        BatchFailed(failed_at=1, errors=[]),
        BatchExpired(expired_at=1),
        BatchCancelled(cancelled_at=1),
    ],
)
async def test_every_terminal_type_is_delivered_to_every_url(
    event_log: EventLog, receiver: Receiver, make_deliverer: MakeDeliverer, event: Event
) -> None:
    deliverer = make_deliverer(webhook_urls=[receiver.url("a"), receiver.url("b")])
    await deliverer.drain()
    await _append(event_log, "batch_2", event)
    await deliverer.drain()
    assert sorted(request.path for request in receiver.requests) == ["a", "b"]
    types = {json.loads(request.body)["type"] for request in receiver.requests}
    assert types == {type(event).__struct_config__.tag}


async def test_non_terminal_events_and_history_are_not_delivered(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    await _append(event_log, "batch_old", COMPLETED)  # before webhooks were enabled
    deliverer = make_deliverer()
    await deliverer.drain()
    await _append(
        event_log,
        "batch_3",
        BatchCancelRequested(cancelling_at=1),
        BatchFinalizing(finalizing_at=1),
    )
    assert await deliverer.drain() == 2
    assert receiver.requests == []
    assert await _pending(event_log._redis, event_log) == 0


async def test_failures_are_retried_under_the_same_id_until_delivered(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    receiver.fail_first = 3
    deliverer = make_deliverer(webhook_max_attempts=5)
    await deliverer.drain()
    await _append(event_log, "batch_4", COMPLETED)
    await deliverer.drain()
    assert len(receiver.requests) == 4
    assert len({request.headers["webhook-id"] for request in receiver.requests}) == 1
    for request in receiver.requests:
        assert request.headers["webhook-signature"] == _expected_signature(request)
    assert await _pending(redis_client, event_log) == 0
    assert await _dead_letters(redis_client, event_log) == []


async def test_a_url_that_never_answers_2xx_is_given_up_and_dead_lettered(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    receiver.fail_first = 1000
    deliverer = make_deliverer(webhook_max_attempts=3)
    await deliverer.drain()
    [recorded] = await _append(event_log, "batch_5", COMPLETED)
    await deliverer.drain()
    assert len(receiver.requests) == 3
    [dead] = await _dead_letters(redis_client, event_log)
    assert dead[b"source_id"] == str(recorded.stream_id).encode()
    assert b"given up after 3 attempts" in dead[b"reason"]
    assert b"status 500" in dead[b"reason"]
    assert await _pending(redis_client, event_log) == 0


async def test_an_unacknowledged_delivery_is_sent_again_by_another_deliverer(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    crashing = make_deliverer("deliverer-a", crash_before_ack=True)
    survivor = make_deliverer("deliverer-b", lease_ms=50)
    await survivor.drain()
    await _append(event_log, "batch_6", COMPLETED)
    with pytest.raises(ExceptionGroup) as raised:
        await crashing.drain()
    assert raised.group_contains(Crash)
    assert len(receiver.requests) == 1
    assert await _pending(redis_client, event_log) == 1

    await asyncio.sleep(0.1)  # the crashed deliverer's lease runs out
    assert await survivor.drain() == 1
    first, second = receiver.requests
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert first.body == second.body
    assert second.headers["webhook-signature"] == _expected_signature(second)
    assert await _pending(redis_client, event_log) == 0


async def test_a_closed_deliverer_leaves_its_entries_pending_and_opens_no_session(
    event_log: EventLog,
    redis_client: aioredis.Redis,
    receiver: Receiver,
    make_deliverer: MakeDeliverer,
) -> None:
    """A deliverer closed while its processor stops posts nothing more: the entry stays
    pending for another deliverer, and no HTTP session is opened that nothing would close."""
    closed = make_deliverer("deliverer-a")
    survivor = make_deliverer("deliverer-b", lease_ms=50)
    await survivor.drain()
    await _append(event_log, "batch_7", COMPLETED)
    await closed.close()

    await closed.drain()

    assert receiver.requests == []
    assert await _pending(redis_client, event_log) == 1
    await asyncio.sleep(0.1)  # the closed deliverer's lease runs out
    assert await survivor.drain() == 1
    assert len(receiver.requests) == 1
    assert await _pending(redis_client, event_log) == 0
