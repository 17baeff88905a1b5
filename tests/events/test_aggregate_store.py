"""Bounded aggregate loads: a snapshot plus the events after it is the whole fold; a cold load
reads nothing before the snapshot; a writer that holds an aggregate reads only what is new; and
`update` decides again after a lost race, and gives up after too many."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest
from hypothesis import given
from hypothesis import strategies as st

from batch_gateway.events import Envelope, Event, EventLog
from batch_gateway.events.aggregate import fold
from batch_gateway.events.aggregate_store import (
    SNAPSHOT_EVERY,
    Contended,
    Decision,
    Loaded,
)
from batch_gateway.events.batch_aggregate import BatchState, batch_store, evolve_batch
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCreated,
    BatchInProgress,
    BatchProgress,
    BatchValidated,
    RequestCounts,
    Usage,
)
from tests.harness.file_events import envelope

CREATED = BatchCreated(
    input_file_id="file-a", endpoint="/v1/chat/completions", completion_window="24h",
    created_at=100, expires_at=86_500, metadata={"k": "v"},
    pass_through_headers=["authorization"],
)  # fmt: skip
VALIDATED = BatchValidated(validated_at=101, total=1000, models=["m1"], priority="normal")


def _progress(n: int) -> BatchProgress:
    return BatchProgress(
        request_counts=RequestCounts(total=1000, completed=n, failed=n // 7),
        usage=Usage(input_tokens=3 * n, output_tokens=n, total_tokens=4 * n),
        chunk=f"1-{n}",
    )


def _claim(attempt: int) -> BatchInProgress:
    return BatchInProgress(claimed_at=102 + attempt, processor=f"p{attempt}", attempt=attempt)


# A batch's life as a processor sees it: claims and progress in any order after validation,
# and perhaps a cancel request.
_middle = st.lists(st.sampled_from(["progress", "claim"]), max_size=60)


def _history(middle: list[str], cancel: bool) -> list[Event]:
    events: list[Event] = [CREATED, VALIDATED, _claim(1)]
    claims, progress = 1, 0
    for step in middle:
        if step == "claim":
            claims += 1
            events.append(_claim(claims))
        else:
            progress += 1
            events.append(_progress(progress))
    if cancel:
        events.append(BatchCancelRequested(cancelling_at=999))
    return events


def _envelopes(events: list[Event]) -> list[Envelope]:
    return [
        envelope(event, version, aggregate_id="batch_x")
        for version, event in enumerate(events, start=1)
    ]


@given(middle=_middle, cancel=st.booleans(), cut=st.integers(min_value=0))
def test_a_snapshot_at_any_version_plus_the_events_after_it_is_the_whole_fold(
    middle: list[str], cancel: bool, cut: int
) -> None:
    envelopes = _envelopes(_history(middle, cancel))
    cut %= len(envelopes) + 1
    head_state, head_version = fold(evolve_batch, envelopes[:cut])
    # Through the snapshot's encoding, as a cold load reads it back.
    stored = msgspec.json.decode(msgspec.json.encode(head_state), type=BatchState | None)

    assert fold(evolve_batch, envelopes[cut:], stored, head_version) == fold(
        evolve_batch, envelopes
    )


async def _grown(log: EventLog, progress: int) -> str:
    store = batch_store(log)
    loaded: Loaded[BatchState] = Loaded(None, 0)
    batch_id = "batch_grown"
    for event in _history(["progress"] * progress, cancel=False):
        loaded, _ = await store.append_loaded(batch_id, "acme", loaded, [event])
    return batch_id


async def test_a_cold_load_reads_nothing_before_the_snapshot(log: EventLog) -> None:
    batch_id = await _grown(log, 2 * SNAPSHOT_EVERY + 7)
    full, version = await batch_store(log).load(batch_id)
    assert version == 2 * SNAPSHOT_EVERY + 10

    # What a retention trim would do: everything up to the snapshot leaves the stream.
    snapshot = await log.redis.get(log.keys.aggregate_snapshot(batch_id))
    assert snapshot is not None
    position = msgspec.json.decode(snapshot)["position"]
    stream = log.keys.aggregate_stream(batch_id)
    await log.redis.xtrim(stream, minid=f"{position['ms']}-{position['seq'] + 1}")
    assert await log.redis.xlen(stream) < SNAPSHOT_EVERY

    assert await batch_store(log).load(batch_id) == (full, version)


async def test_an_unreadable_snapshot_is_ignored_and_the_whole_stream_folded(
    log: EventLog,
) -> None:
    batch_id = await _grown(log, SNAPSHOT_EVERY + 1)
    expected = await batch_store(log).load(batch_id)

    await log.redis.set(log.keys.aggregate_snapshot(batch_id), b'{"version": "nonsense"}')

    assert await batch_store(log).load(batch_id) == expected


async def test_a_holder_catches_up_on_the_new_events_only(log: EventLog) -> None:
    batch_id = await _grown(log, 3)
    store = batch_store(log)
    held = await store.load_loaded(batch_id)
    assert held.state is not None

    await log.append(batch_id, "acme", held.version, [_progress(4)])
    caught_up = await store.load_after(batch_id, held)

    assert caught_up.version == held.version + 1
    assert caught_up.state is not None
    assert caught_up.state.chunks == [*held.state.chunks, "1-4"]
    assert caught_up == await store.load_loaded(batch_id)
    assert await store.load_after(batch_id, caught_up) is caught_up, "nothing new: no fold"


async def test_update_decides_again_after_a_lost_race(log: EventLog) -> None:
    batch_id = await _grown(log, 1)
    store = batch_store(log)
    seen: list[int] = []

    async def decide(state: BatchState | None) -> Decision:
        assert state is not None
        seen.append(state.request_counts.completed)
        if len(seen) == 1:  # another writer gets in between this load and its append
            _, version = await store.load(batch_id)
            await log.append(batch_id, "acme", version, [_progress(2)])
        return Decision([_progress(state.request_counts.completed + 10)], state.tenant)

    loaded, recorded = await store.update(batch_id, decide)

    assert seen == [1, 2], "the second decision saw the other writer's event"
    assert len(recorded) == 1
    assert loaded.state is not None
    assert loaded.state.request_counts.completed == 12


async def test_update_gives_up_on_an_aggregate_that_keeps_changing(log: EventLog) -> None:
    batch_id = await _grown(log, 1)
    store = batch_store(log)

    async def decide(state: BatchState | None) -> Decision:
        assert state is not None
        _, version = await store.load(batch_id)
        await log.append(batch_id, "acme", version, [_progress(5)])  # always first
        return Decision([_progress(9)], state.tenant)

    with pytest.raises(Contended):
        await store.update(batch_id, decide, attempts=3)


async def test_update_appends_nothing_when_the_decision_is_nothing(log: EventLog) -> None:
    batch_id = await _grown(log, 1)
    before = await batch_store(log).load_loaded(batch_id)

    async def decide(state: Any) -> Decision:
        return Decision()

    assert await batch_store(log).update(batch_id, decide) == (before, [])


async def test_an_aggregate_that_ends_is_snapshotted_at_its_last_version(log: EventLog) -> None:
    batch_id = await _grown(log, 5)
    store = batch_store(log)
    loaded = await store.load_loaded(batch_id)
    assert loaded.state is not None
    ending: list[Event] = [
        BatchCancelRequested(cancelling_at=200),
        BatchCancelled(cancelled_at=201),
    ]
    ended, _ = await store.append_loaded(batch_id, "acme", loaded, ending)

    # Its whole stream can go (retention): the snapshot alone is the batch.
    await log.redis.delete(log.keys.aggregate_stream(batch_id))

    assert await batch_store(log).load_loaded(batch_id) == ended
    assert ended.state is not None
    assert ended.state.status == "cancelled"
