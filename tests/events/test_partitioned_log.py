"""A partitioned log (ADR 0029) on a real Redis Cluster of three masters: every aggregate in
one partition with its order kept, the partitions spread over every master, and every
consumer of the log reading them all."""

from __future__ import annotations

import uuid

import redis
import redis.asyncio as aioredis

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.keys import StreamKeys
from tests.harness.file_events import deleted, uploaded

PARTITIONS = 8
CLUSTER_MASTERS = 3  # the module's cluster (conftest.cluster_url)


def test_the_partitions_of_a_log_spread_over_every_master(cluster_url: str) -> None:
    keys = StreamKeys("batch-gateway", PARTITIONS)
    port = int(cluster_url.rsplit(":", 1)[1].split("/")[0])
    with redis.Redis(host="127.0.0.1", port=port) as node:
        owners = {
            _owner(node, node.cluster("KEYSLOT", keys.partition_stream(p)))
            for p in keys.every_partition
        }
    assert len(owners) == CLUSTER_MASTERS


async def test_a_partitioned_log_keeps_each_aggregate_in_order_in_one_partition(
    cluster: aioredis.Redis,
) -> None:
    keys = StreamKeys(f"parts-{uuid.uuid4().hex[:8]}", PARTITIONS)
    log = EventLog(cluster, keys, system_clock)
    ids = [f"file-{uuid.uuid4().hex[:24]}" for _ in range(40)]
    for file_id in ids:
        await log.append(file_id, "t", 0, [uploaded()])
    for file_id in ids[::2]:
        await log.append(file_id, "t", 1, [deleted()])

    seen: dict[str, list[int]] = {}
    used = set()
    for partition in keys.every_partition:
        position = ORIGIN
        while records := await log.read(position, 7, partition):
            for record in records:
                aggregate_id = record.envelope.aggregate_id
                assert keys.partition_of(aggregate_id) == partition
                seen.setdefault(aggregate_id, []).append(record.envelope.aggregate_version)
                used.add(partition)
            position = records[-1].stream_id
    assert seen == {i: [1, 2] if n % 2 == 0 else [1] for n, i in enumerate(ids)}
    assert len(used) > CLUSTER_MASTERS  # the aggregates landed in most partitions
    for file_id in ids[:3]:
        assert [r.envelope.aggregate_version for r in await log.read_aggregate(file_id)] == (
            [1, 2] if file_id in ids[::2] else [1]
        )


def _owner(node: redis.Redis, slot: int) -> int:
    for first, last, *nodes in node.cluster("SLOTS"):
        if first <= slot <= last:
            return int(nodes[0][1])
    raise AssertionError(f"no node serves slot {slot}")
