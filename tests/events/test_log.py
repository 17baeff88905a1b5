"""`EventLog.append`: atomic, version-checked, written to the global and aggregate streams.

Every test runs against this machine's Redis and the embedded Redis 6.2 (see conftest).
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import cast

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog, Recorded, StreamId, VersionConflict
from batch_gateway.events.envelope import decode, encode
from tests.harness.file_events import deleted, expired, new_file_id, uploaded

Entries = list[tuple[bytes, dict[bytes, bytes]]]


async def _entries(client: aioredis.Redis, key: str) -> Entries:
    return cast(Entries, await client.xrange(key))


async def test_append_records_versions_one_to_n_at_increasing_ids(log: EventLog) -> None:
    file_id = new_file_id()
    recorded: list[Recorded] = []
    recorded += await log.append(file_id, "acme", 0, [uploaded()])
    for version in range(1, 5):
        recorded += await log.append(file_id, "acme", version, [deleted(at=version)])

    assert [r.envelope.aggregate_version for r in recorded] == [1, 2, 3, 4, 5]
    ids = [r.stream_id for r in recorded]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert {r.envelope.aggregate_id for r in recorded} == {file_id}
    assert {r.envelope.tenant for r in recorded} == {"acme"}
    assert len({r.envelope.event_id for r in recorded}) == 5
    assert await log.version(file_id) == 5
    assert await log.read_aggregate(file_id) == recorded
    assert await log.read() == recorded


async def test_a_new_aggregate_is_at_version_zero(log: EventLog) -> None:
    assert await log.version(new_file_id()) == 0
    assert await log.read_aggregate(new_file_id()) == []


async def test_both_streams_hold_the_same_entries_at_the_same_ids(
    log: EventLog, log_redis: aioredis.Redis
) -> None:
    first, second = new_file_id(), new_file_id()
    await log.append(first, "acme", 0, [uploaded()])
    await log.append(second, "acme", 0, [uploaded(), deleted()])
    await log.append(first, "acme", 1, [expired()])

    everything = await _entries(log_redis, log.keys.global_stream)
    assert len(everything) == 4
    for file_id in (first, second):
        # The aggregate's stream is exactly its entries of the global one: same ids, same fields.
        own = await _entries(log_redis, log.keys.aggregate_stream(file_id))
        assert own == [e for e in everything if decode(e[1][b"event"]).aggregate_id == file_id]
    recorded = await log.read()
    for (raw_id, fields), record in zip(everything, recorded, strict=True):
        assert StreamId.parse(raw_id) == record.stream_id
        assert fields == dict(zip((b"type", b"event"), _encoded(record), strict=True))


def _encoded(record: Recorded) -> tuple[bytes, bytes]:
    name, document = encode(record.envelope)
    return name.encode(), document


@pytest.mark.parametrize("expected", [0, 1, 3, 7])
async def test_a_stale_writer_gets_a_conflict_and_appends_nothing(
    log: EventLog, log_redis: aioredis.Redis, expected: int
) -> None:
    file_id = new_file_id()
    await log.append(file_id, "acme", 0, [uploaded()])
    await log.append(file_id, "acme", 1, [deleted()])
    before = (
        await _entries(log_redis, log.keys.global_stream),
        await _entries(log_redis, log.keys.aggregate_stream(file_id)),
    )

    with pytest.raises(VersionConflict) as raised:
        await log.append(file_id, "acme", expected, [expired(), deleted()])

    assert (raised.value.aggregate_id, raised.value.expected, raised.value.actual) == (
        file_id,
        expected,
        2,
    )
    assert raised.value.status_code == 409
    after = (
        await _entries(log_redis, log.keys.global_stream),
        await _entries(log_redis, log.keys.aggregate_stream(file_id)),
    )
    assert after == before
    assert await log.version(file_id) == 2


async def test_a_conflict_on_a_new_aggregate_leaves_no_key_behind(
    log: EventLog, log_redis: aioredis.Redis
) -> None:
    file_id = new_file_id()
    with pytest.raises(VersionConflict):
        await log.append(file_id, "acme", 1, [deleted()])
    keys = [
        log.keys.global_stream,
        log.keys.aggregate_stream(file_id),
        log.keys.aggregate_version(file_id),
    ]
    assert await log_redis.exists(*keys) == 0


async def test_of_concurrent_writers_at_one_version_exactly_one_wins(
    log: EventLog, log_redis: aioredis.Redis
) -> None:
    file_id = new_file_id()
    outcomes = await asyncio.gather(
        *(log.append(file_id, "acme", 0, [uploaded(size=n)]) for n in range(20)),
        return_exceptions=True,
    )

    winners = [outcome for outcome in outcomes if isinstance(outcome, list)]
    losers = [outcome for outcome in outcomes if isinstance(outcome, VersionConflict)]
    assert len(winners) == 1
    assert len(losers) == 19
    assert {loser.actual for loser in losers} == {1}
    assert await log.version(file_id) == 1
    assert await log.read_aggregate(file_id) == winners[0]
    assert await log_redis.xlen(log.keys.global_stream) == 1


async def test_a_multi_event_append_is_contiguous_and_all_or_nothing(log: EventLog) -> None:
    file_ids = [new_file_id() for _ in range(10)]
    await asyncio.gather(
        *(
            log.append(file_id, "acme", 0, [uploaded(), deleted(), expired()])
            for file_id in file_ids
        )
    )

    everything = await log.read()
    assert len(everything) == 30
    # No other writer's event lands between the events of one append.
    positions: defaultdict[str, list[int]] = defaultdict(list)
    for position, record in enumerate(everything):
        positions[record.envelope.aggregate_id].append(position)
    for file_id in file_ids:
        start = positions[file_id][0]
        assert positions[file_id] == [start, start + 1, start + 2]
        versions = [everything[p].envelope.aggregate_version for p in positions[file_id]]
        assert versions == [1, 2, 3]
        assert await log.version(file_id) == 3

    with pytest.raises(VersionConflict):
        await log.append(file_ids[0], "acme", 2, [deleted(), deleted(), deleted()])
    assert await log.read() == everything


async def test_read_pages_through_the_global_stream(log: EventLog) -> None:
    for _ in range(7):
        await log.append(new_file_id(), "acme", 0, [uploaded()])
    everything = await log.read()
    assert len(everything) == 7

    pages: list[list[Recorded]] = []
    position = StreamId(0, 0)
    while page := await log.read(position, count=3):
        pages.append(page)
        position = page[-1].stream_id
    assert [len(page) for page in pages] == [3, 3, 1]
    assert [record for page in pages for record in page] == everything
    assert await log.read(everything[3].stream_id) == everything[4:]
    assert await log.read(everything[-1].stream_id) == []
