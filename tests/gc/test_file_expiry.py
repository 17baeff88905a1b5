"""Files expire exactly when due, never before, and their bytes go with them."""

from __future__ import annotations

from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.file_aggregate import evolve_file
from tests.gc.conftest import MakeGc
from tests.gc.world import DAY, HOUR, ManualClock, World


async def _lifecycle(world: World, file_id: str) -> str:
    state, _ = await AggregateStore(world.log, evolve_file).load(file_id)
    assert state is not None
    return state.lifecycle


async def test_a_file_expires_exactly_when_due_and_its_bytes_go(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    data = b'{"a": 1}\n'
    input_id, input_key = await world.upload(data, expires_in=HOUR)
    output_id, output_key = await world.upload(
        b"out\n", expires_in=2 * HOUR, purpose="batch_output"
    )
    forever_id, forever_key = await world.upload()  # no expires_at: never expires
    gc = make_gc()

    clock.now = start + HOUR - 0.001
    tally = await gc.sweep()
    assert not tally.expired
    assert not tally.deleted
    assert await _lifecycle(world, input_id) == "active"
    assert await world.exists(input_key)

    clock.now = start + HOUR
    tally = await gc.sweep()
    assert tally.expired == {"file": 1}
    assert tally.deleted == {"file": 1}
    assert tally.freed == {"file": len(data)}
    assert await _lifecycle(world, input_id) == "expired"
    assert not await world.exists(input_key)
    assert await _lifecycle(world, output_id) == "active"
    assert await world.exists(output_key)

    clock.now = start + 2 * HOUR + 0.5
    tally = await gc.sweep()
    assert tally.expired == {"file": 1}
    assert await _lifecycle(world, output_id) == "expired"
    assert not await world.exists(output_key)

    clock.now = start + 400 * DAY
    assert not (await gc.sweep()).expired
    assert await _lifecycle(world, forever_id) == "active"
    assert await world.exists(forever_key)
    expired = await world.events("file.expired")
    assert sorted(r.envelope.aggregate_id for r in expired) == sorted([input_id, output_id])


async def test_an_input_file_outlives_its_expiry_while_a_batch_still_reads_it(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    input_id, input_key = await world.upload(expires_in=HOUR)
    batch_id = await world.batch(input_id)
    await world.claim(batch_id)  # a processor runs it: the gc leaves the batch alone
    gc = make_gc()

    clock.now = start + 2 * HOUR
    assert not (await gc.sweep()).expired
    assert await _lifecycle(world, input_id) == "active"
    assert await world.exists(input_key)

    await world.complete(batch_id)
    tally = await gc.sweep()
    assert tally.expired == {"file": 1}
    assert await _lifecycle(world, input_id) == "expired"
    assert not await world.exists(input_key)


async def test_a_deleted_file_whose_bytes_stayed_behind_loses_them(
    world: World, make_gc: MakeGc
) -> None:
    file_id, key = await world.upload(b"12345\n")
    await world.delete_event_only(file_id)

    gc = make_gc()
    tally = await gc.sweep()

    assert tally.deleted == {"file": 1}
    assert tally.freed == {"file": 6}
    assert not await world.exists(key)
    await gc.coordination.release()
    assert not (await make_gc().sweep()).deleted
