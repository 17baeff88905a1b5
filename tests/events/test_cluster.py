"""The event log and every Redis structure next to it work on a Redis Cluster."""

from __future__ import annotations

import uuid

import pytest
import redis.asyncio as aioredis

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog, VersionConflict
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.log import JobEntry
from batch_gateway.gateway.idempotency import IdempotencyKeys
from batch_gateway.processors.consumer_group import ConsumerGroup
from batch_gateway.processors.execution.priority import job_stream
from batch_gateway.secret_store import SecretStore, load_secrets_key, new_secrets_key
from tests.harness.file_events import uploaded


@pytest.fixture
def keys() -> StreamKeys:
    return StreamKeys(f"cluster-{uuid.uuid4().hex[:8]}")


async def test_append_read_tail_and_conflicts_on_a_cluster(
    cluster: aioredis.Redis, keys: StreamKeys
) -> None:
    log = EventLog(cluster, keys, system_clock)
    first = await log.append("file-a", "t", 0, [uploaded()])
    entry = JobEntry(job_stream(keys, "normal"), "file-a")
    envelopes = log.prepare("file-b", "t", 0, [uploaded()])
    second = await log.append_envelopes(envelopes, enqueue=entry)
    with pytest.raises(VersionConflict):
        await log.append("file-a", "t", 0, [uploaded()])
    assert [r.stream_id for r in await log.read()] == [first[0].stream_id, second[0].stream_id]
    assert [r.stream_id for r in await log.read_aggregate("file-b")] == [second[0].stream_id]
    assert await log.tail(first[0].stream_id, block_ms=10) == second
    assert await cluster.xlen(job_stream(keys, "normal")) == 1


async def test_consumer_groups_secrets_and_idempotency_on_a_cluster(
    cluster: aioredis.Redis, keys: StreamKeys
) -> None:
    log = EventLog(cluster, keys, system_clock)
    await log.append("file-c", "t", 0, [uploaded()])
    group = ConsumerGroup(
        cluster,
        keys.global_stream,
        "validators",
        "one",
        lease_ms=1,
        max_deliveries=5,
        dead_letter_stream=f"{keys.tag}:dead-letter",
    )
    await group.ensure()
    await group.ensure()
    [(entry_id, fields)] = await group.read(10, None)
    await group.dead_letter(entry_id, fields, "test")
    assert await cluster.xlen(f"{keys.tag}:dead-letter") == 1

    secrets = SecretStore(cluster, keys, load_secrets_key(new_secrets_key()))
    await secrets.put("batch_1", "t", {"authorization": "Bearer x"}, 60)
    assert await secrets.get("batch_1", "t") == {"authorization": "Bearer x"}

    idempotency = IdempotencyKeys(cluster, keys, 60)
    assert await idempotency.claim("t", "key", "fp", "batch_1") is None
    assert await idempotency.claim("t", "key", "fp", "batch_2") == "batch_1"
