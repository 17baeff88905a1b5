"""`ConsumerGroup`: the Redis Streams discipline, against the real Redis."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis.asyncio as aioredis

from batch_gateway.processors.consumer_group import ConsumerGroup, Entry

GroupFactory = Callable[..., ConsumerGroup]


@pytest.fixture
def stream(key_prefix: str) -> str:
    return f"{{{key_prefix}}}:work"


@pytest.fixture
def dead_letter_stream(key_prefix: str) -> str:
    return f"{{{key_prefix}}}:dead-letter"


@pytest.fixture
def consumer(redis_client: aioredis.Redis, stream: str, dead_letter_stream: str) -> GroupFactory:
    def make(name: str, *, lease_ms: int = 30_000, max_deliveries: int = 5) -> ConsumerGroup:
        return ConsumerGroup(
            redis_client,
            stream,
            "workers",
            name,
            lease_ms=lease_ms,
            max_deliveries=max_deliveries,
            dead_letter_stream=dead_letter_stream,
        )

    return make


async def _add(client: aioredis.Redis, stream: str, *payloads: str) -> list[bytes]:
    return [cast(bytes, await client.xadd(stream, {"payload": p})) for p in payloads]


async def _pending(client: aioredis.Redis, stream: str) -> list[dict[str, Any]]:
    return cast(
        list[dict[str, Any]],
        await client.xpending_range(stream, "workers", min="-", max="+", count=100),
    )


def _payloads(entries: list[Entry]) -> list[bytes]:
    return [fields[b"payload"] for _, fields in entries]


async def test_ensure_is_idempotent_and_keeps_the_group_position(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    a = consumer("a")
    await a.ensure()
    await _add(redis_client, stream, "one")
    assert _payloads(await a.read(10, None)) == [b"one"]

    await a.ensure()  # BUSYGROUP is ignored; the group is not reset to the start
    await consumer("b").ensure()

    groups = await redis_client.xinfo_groups(stream)
    assert [group["name"] for group in groups] == [b"workers"]
    assert await a.read(10, None) == []


async def test_ensure_on_a_missing_stream_creates_it(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    await consumer("a").ensure()
    assert await redis_client.exists(stream) == 1
    assert await consumer("a").read(10, None) == []


async def test_ensure_from_the_start_delivers_the_history(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    await _add(redis_client, stream, "before", "also before")
    a = consumer("a")
    await a.ensure()
    assert _payloads(await a.read(10, None)) == [b"before", b"also before"]


async def test_read_hands_each_entry_to_one_consumer_and_ack_clears_it(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    a, b = consumer("a"), consumer("b")
    await a.ensure()
    ids = await _add(redis_client, stream, "one", "two", "three")

    first = await a.read(2, None)
    rest = await b.read(10, None)
    assert [entry_id for entry_id, _ in first + rest] == ids
    assert _payloads(first + rest) == [b"one", b"two", b"three"]
    assert await a.read(10, None) == []
    assert len(await _pending(redis_client, stream)) == 3

    await a.ack(*(entry_id for entry_id, _ in first))
    await a.ack()  # nothing to acknowledge is not an error
    pending = await _pending(redis_client, stream)
    assert [(p["message_id"], p["consumer"]) for p in pending] == [(ids[2], b"b")]


async def test_an_unacknowledged_entry_is_reclaimed_only_after_the_lease(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    a, b = consumer("a", lease_ms=50), consumer("b", lease_ms=50)
    await a.ensure()
    [entry_id] = await _add(redis_client, stream, "job")
    assert _payloads(await a.read(10, None)) == [b"job"]  # and a dies without acking

    assert await b.reclaim(10) == []  # a still holds its lease
    assert await b.read(10, None) == []
    await asyncio.sleep(0.08)

    reclaimed = await b.reclaim(10)
    assert [(i, f[b"payload"]) for i, f in reclaimed] == [(entry_id, b"job")]
    [pending] = await _pending(redis_client, stream)
    assert pending["consumer"] == b"b"
    assert await b.reclaim(10) == []  # b's own lease starts afresh

    await b.ack(entry_id)
    assert await _pending(redis_client, stream) == []


async def test_deliveries_count_every_read_and_reclaim(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str
) -> None:
    a, b = consumer("a", max_deliveries=3), consumer("b", lease_ms=0, max_deliveries=3)
    await a.ensure()
    [entry_id] = await _add(redis_client, stream, "job")
    assert await a.deliveries(entry_id) == 0  # never delivered

    await a.read(10, None)
    counts = [await a.deliveries(entry_id)]
    for _ in range(3):
        assert len(await b.reclaim(10)) == 1
        counts.append(await b.deliveries(entry_id))
    assert counts == [1, 2, 3, 4]
    assert [a.is_poison(n) for n in counts] == [False, False, False, True]

    await b.ack(entry_id)
    assert await b.deliveries(entry_id) == 0  # acknowledged entries are not pending


async def test_dead_letter_moves_the_entry_with_its_reason_and_acks_it(
    consumer: GroupFactory, redis_client: aioredis.Redis, stream: str, dead_letter_stream: str
) -> None:
    a = consumer("a")
    await a.ensure()
    poison_id, healthy_id = await _add(redis_client, stream, "poison", "healthy")
    entries = await a.read(10, None)
    poison_fields = entries[0][1]

    await a.dead_letter(poison_id, poison_fields, "delivered 6 times")

    moved = cast(list[Entry], await redis_client.xrange(dead_letter_stream))
    assert [fields for _, fields in moved] == [
        {
            b"payload": b"poison",
            b"source_stream": stream.encode(),
            b"source_id": poison_id,
            b"reason": b"delivered 6 times",
        }
    ]
    pending = await _pending(redis_client, stream)
    assert [p["message_id"] for p in pending] == [healthy_id]
    # The source stream keeps its entries: it is the event log, not a queue.
    assert await redis_client.xlen(stream) == 2
