"""The event log's keys: every key one append touches lives in one Redis Cluster slot."""

from __future__ import annotations

import msgspec
import redis.asyncio as aioredis
from hypothesis import example, given
from hypothesis import strategies as st
from redis.crc import key_slot

from batch_gateway.events import EventLog
from batch_gateway.events.keys import StreamKeys
from batch_gateway.settings import CommonSettings
from tests.harness.file_events import new_file_id, uploaded


def _slots(keys: StreamKeys, aggregate_id: str) -> set[int]:
    names = [
        keys.global_stream,
        keys.aggregate_stream(aggregate_id),
        keys.aggregate_version(aggregate_id),
    ]
    return {key_slot(name.encode()) for name in names}


async def test_the_keys_of_an_append_share_one_cluster_slot(
    log: EventLog, log_redis: aioredis.Redis
) -> None:
    file_ids = [new_file_id() for _ in range(5)]
    for file_id in file_ids:
        await log.append(file_id, "acme", 0, [uploaded()])
    slots = {slot for file_id in file_ids for slot in _slots(log.keys, file_id)}
    assert len(slots) == 1
    # Every key the appends actually wrote, named or not, is in that slot.
    written = [key async for key in log_redis.scan_iter(match=f"{log.keys.tag}*")]
    assert len(written) == 1 + 2 * len(file_ids)
    assert {key_slot(key) for key in written} == slots


def _accepted_prefix(prefix: str) -> bool:
    try:
        msgspec.convert({"key_prefix": prefix}, CommonSettings)
    except msgspec.ValidationError:
        return False
    return True


@given(prefix=st.text(min_size=1, max_size=64), aggregate_id=st.text())
@example(prefix="}", aggregate_id="file-a")
@example(prefix="batch-gateway", aggregate_id="{other}")
def test_every_prefix_the_settings_accept_keeps_one_slot(prefix: str, aggregate_id: str) -> None:
    if _accepted_prefix(prefix):
        assert len(_slots(StreamKeys(prefix), aggregate_id)) == 1
