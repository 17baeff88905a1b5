"""Batches: an unclaimed batch past its window ends `expired` as a processor would end it; a
claimed one is its processor's; an ended batch leaves nothing behind."""

from __future__ import annotations

import json
from collections.abc import Sequence

import pytest
import redis.asyncio as aioredis

from batch_gateway.events import EventLog, FileUploaded
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState, evolve_batch
from batch_gateway.events.batch_events import BatchExpired, BatchInProgress, RequestCounts
from batch_gateway.events.envelope import Envelope, Recorded
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.log import JobEntry
from batch_gateway.events.types import event_type_name
from batch_gateway.gc.expiry import expiry_error_file_id
from batch_gateway.gc.settings import GcSettings
from batch_gateway.secret_store import SecretStore, load_secrets_key
from batch_gateway.storage import ObjectStorage, file_object_key
from tests.gc.conftest import MakeGc
from tests.gc.world import DAY, ManualClock, World, requests

COUNT = 25


async def _batch(world: World, batch_id: str) -> BatchState:
    state, _ = await AggregateStore(world.log, evolve_batch).load(batch_id)
    assert state is not None
    return state


async def _content(storage: ObjectStorage, key: str) -> list[dict[str, object]]:
    async with await storage.read(key) as reader:
        data = b"".join([chunk async for chunk in reader])
    return [json.loads(line) for line in data.splitlines()]


async def test_an_unclaimed_batch_past_its_window_expires_like_a_processor_would_end_it(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    input_id, _ = await world.upload(requests(COUNT), expires_in=2 * DAY)
    batch_id = await world.batch(input_id, total=COUNT)
    gc = make_gc()

    clock.now = start + DAY - 0.5
    assert not (await gc.sweep()).expired
    assert (await _batch(world, batch_id)).status == "in_progress"

    clock.now = start + DAY
    assert (await gc.sweep()).expired == {"batch": 1}

    batch = await _batch(world, batch_id)
    assert batch.status == "expired"
    assert batch.output_file_id is None
    assert batch.request_counts == RequestCounts(total=COUNT, completed=0, failed=COUNT)
    assert batch.error_file_id == expiry_error_file_id(batch_id)
    [uploaded] = [
        r.envelope
        for r in await world.events("file.uploaded")
        if r.envelope.aggregate_id == batch.error_file_id
    ]
    assert isinstance(uploaded.event, FileUploaded)
    assert uploaded.event.purpose == "batch_output"
    assert uploaded.event.line_count == COUNT
    assert uploaded.event.expires_at == int(clock.now) + 30 * DAY
    lines = await _content(world.storage, uploaded.event.storage_key)
    assert [line["custom_id"] for line in lines] == [f"r{i}" for i in range(COUNT)]
    for line in lines:
        assert line["response"] is None
        assert line["error"] == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
        assert str(line["id"]).startswith("batch_req_")
    assert (await gc.sweep()).expired == {}, "nothing twice"
    assert len(await world.events("batch.expired")) == 1


async def test_a_batch_still_validating_past_its_window_expires_without_files(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    input_id, _ = await world.upload(requests(2))
    batch_id = await world.batch(input_id, validated=False)

    clock.now = start + DAY
    assert (await make_gc().sweep()).expired == {"batch": 1}

    batch = await _batch(world, batch_id)
    assert batch.status == "expired"
    assert (batch.output_file_id, batch.error_file_id) == (None, None)


async def test_a_claimed_batch_is_left_to_its_processor(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    input_id, _ = await world.upload(requests(2))
    batch_id = await world.batch(input_id, total=2)
    await world.claim(batch_id)

    clock.now = start + 2 * DAY
    assert not (await make_gc().sweep()).expired
    assert (await _batch(world, batch_id)).status == "in_progress"


class ClaimedJustBefore(EventLog):
    """A log where a processor claims the batch just before the gc's expiry lands."""

    async def append_envelopes(
        self, envelopes: Sequence[Envelope], enqueue: JobEntry | None = None
    ) -> list[Recorded]:
        first = envelopes[0]
        if isinstance(first.event, BatchExpired):
            claim = BatchInProgress(claimed_at=0, processor="quick")
            await super().append(
                first.aggregate_id, first.tenant, first.aggregate_version - 1, [claim]
            )
        return await super().append_envelopes(envelopes, enqueue)


async def test_a_batch_claimed_while_the_gc_expires_it_stays_the_processors(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
    storage: ObjectStorage,
) -> None:
    input_id, _ = await world.upload(requests(3))
    batch_id = await world.batch(input_id, total=3)
    gc = make_gc(log=ClaimedJustBefore(redis_client, StreamKeys(key_prefix), clock))

    clock.now = start + DAY
    tally = await gc.sweep()

    assert not tally.expired
    batch = await _batch(world, batch_id)
    assert (batch.status, batch.claims) == ("in_progress", 1)
    assert not await world.events("batch.expired")
    # The error file it had published for the expiry is withdrawn, bytes and all.
    file_id = expiry_error_file_id(batch_id)
    assert await _file_events(world, file_id) == ["file.uploaded", "file.deleted"]
    assert tally.deleted == {"file": 1}
    assert not await storage.exists(file_object_key(world.tenant, file_id))


async def test_an_ended_batch_leaves_no_chunks_or_headers_behind(
    world: World,
    make_gc: MakeGc,
    redis_client: aioredis.Redis,
    key_prefix: str,
    gc_settings: GcSettings,
) -> None:
    input_id, input_key = await world.upload(requests(2))
    batch_id = await world.batch(input_id, total=2)
    secrets = SecretStore(
        redis_client, StreamKeys(key_prefix), load_secrets_key(gc_settings.secrets_key)
    )
    await secrets.put(batch_id, world.tenant, {"Authorization": "Bearer s3cret"}, 3600)
    await world.claim(batch_id)
    committed = [await world.commit_chunk(batch_id, f"1-{n}") for n in (1, 2)]
    stray = await world.chunk(batch_id, "1-3")  # written, never committed (a crash)
    gc = make_gc()
    assert not (await gc.sweep()).deleted
    assert all([await world.exists(key) for key in [*committed, stray]])

    await world.complete(batch_id)
    tally = await gc.sweep()

    assert tally.deleted == {"chunk": 3}
    assert not any([await world.exists(key) for key in [*committed, stray]])
    assert await secrets.get(batch_id, world.tenant) == {}
    assert await world.exists(input_key)


class Crash(BaseException):
    """The gc died here."""


class DiesBeforeTheFence(EventLog):
    async def append_envelopes(
        self, envelopes: Sequence[Envelope], enqueue: JobEntry | None = None
    ) -> list[Recorded]:
        if isinstance(envelopes[0].event, BatchExpired):
            raise Crash
        return await super().append_envelopes(envelopes, enqueue)


async def _file_events(world: World, file_id: str) -> list[str]:
    return [
        event_type_name(r.envelope.event)
        for r in await world.events()
        if r.envelope.aggregate_id == file_id
    ]


async def _die_before_the_fence(
    world: World,
    make_gc: MakeGc,
    redis_client: aioredis.Redis,
    key_prefix: str,
    clock: ManualClock,
    count: int,
) -> str:
    """A batch past its window whose gc published the error file, then died."""
    input_id, _ = await world.upload(requests(count))
    batch_id = await world.batch(input_id, total=count)
    dying = make_gc(log=DiesBeforeTheFence(redis_client, StreamKeys(key_prefix), clock))
    with pytest.raises(Crash):
        await dying.sweep()
    await redis_client.delete(f"{{{key_prefix}}}:gc:lease")  # its lease runs out
    assert await _file_events(world, expiry_error_file_id(batch_id)) == ["file.uploaded"]
    return batch_id


async def test_a_gc_that_died_before_the_fence_is_followed_by_one_using_its_file(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    clock.now = start + DAY
    batch_id = await _die_before_the_fence(world, make_gc, redis_client, key_prefix, clock, 4)

    assert (await make_gc().sweep()).expired == {"batch": 1}

    batch = await _batch(world, batch_id)
    file_id = expiry_error_file_id(batch_id)
    assert (batch.status, batch.error_file_id) == ("expired", file_id)
    assert batch.request_counts == RequestCounts(total=4, failed=4)
    assert await _file_events(world, file_id) == ["file.uploaded"]
    assert len(await _content(world.storage, file_object_key(world.tenant, file_id))) == 4


async def test_a_gc_that_died_before_the_fence_leaves_no_file_if_a_processor_took_over(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    clock.now = start + DAY
    batch_id = await _die_before_the_fence(world, make_gc, redis_client, key_prefix, clock, 2)
    await world.claim(batch_id)
    await world.complete(batch_id)

    tally = await make_gc().sweep()

    assert not tally.expired
    assert tally.deleted == {"file": 1}
    file_id = expiry_error_file_id(batch_id)
    assert await _file_events(world, file_id) == ["file.uploaded", "file.deleted"]
    assert not await world.exists(file_object_key(world.tenant, file_id))
    assert (await _batch(world, batch_id)).status == "completed"
