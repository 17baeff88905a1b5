"""Any number of gc instances, restarts and replays: nothing is expired or deleted twice,
nothing early, no active file's bytes are ever touched, and nothing is left behind."""

from __future__ import annotations

import asyncio
from collections import Counter

import pytest
import redis.asyncio as aioredis

from batch_gateway.gc.metrics import Tally
from batch_gateway.storage import ObjectStorage
from tests.gc.conftest import MakeGc
from tests.gc.world import HOUR, ManualClock, World

DUE = 4


class Crash(BaseException):
    """The process died here (like SystemExit, not an error the gc could handle)."""


class CrashingDeletes:
    """Storage whose deletes kill the gc: it dies after appending expiries, before the bytes go."""

    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage

    def __getattr__(self, name: str) -> object:
        return getattr(self._storage, name)

    async def delete(self, key: str) -> bool:
        raise Crash(key)


async def _setup(world: World) -> tuple[list[str], str]:
    """DUE files that expire in an hour, and the key of one that never does."""
    due = [(await world.upload(f"{i}\n".encode(), expires_in=HOUR))[1] for i in range(DUE)]
    _, active_key = await world.upload(b"keep me\n")
    return due, active_key


async def _assert_collected_once(world: World, due: list[str], active_key: str) -> None:
    expired = Counter(r.envelope.aggregate_id for r in await world.events("file.expired"))
    assert len(expired) == DUE
    assert set(expired.values()) == {1}, "one file.expired per file"
    for key in due:
        assert not await world.exists(key)
    assert await world.exists(active_key)


def _total(tallies: list[Tally]) -> tuple[int, int]:
    return (
        sum(t.expired["file"] for t in tallies),
        sum(t.deleted["file"] for t in tallies),
    )


async def test_a_second_gc_and_a_replay_from_scratch_do_nothing_again(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    due, active_key = await _setup(world)
    clock.now = start + HOUR
    first = make_gc()
    assert _total([await first.sweep(orphans=True)]) == (DUE, DUE)
    await first.coordination.release()  # as `--once` does on exit

    assert _total([await make_gc().sweep(orphans=True)]) == (0, 0)
    # A gc with no checkpoint at all replays and re-checks every cleanup: nothing is there.
    assert await redis_client.delete(f"{{{key_prefix}}}:gc:checkpoint") == 1
    replayed = make_gc()
    assert _total([await replayed.sweep(orphans=True)]) == (0, 0)
    await _assert_collected_once(world, due, active_key)


async def test_a_gc_that_dies_mid_sweep_is_finished_by_the_next(
    world: World,
    make_gc: MakeGc,
    storage: ObjectStorage,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    due, active_key = await _setup(world)
    clock.now = start + HOUR
    dying = make_gc(on=CrashingDeletes(storage))
    with pytest.raises(Crash):
        await dying.sweep()
    # It appended every expiry, then died before deleting any bytes (and kept its lease).
    assert len(await world.events("file.expired")) == DUE
    assert all([await world.exists(key) for key in due])

    waiting = make_gc()
    assert _total([await waiting.sweep()]) == (0, 0), "the lease is still the dead one's"
    clock.now += 1
    await redis_client.delete(f"{{{key_prefix}}}:gc:lease")  # the dead gc's lease runs out
    assert _total([await waiting.sweep()]) == (0, DUE)
    await _assert_collected_once(world, due, active_key)


async def test_gcs_sweeping_at_once_expire_and_delete_each_file_once(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    due, active_key = await _setup(world)
    gcs = [make_gc() for _ in range(3)]
    clock.now = start + HOUR - 1
    assert _total(list(await asyncio.gather(*(gc.sweep() for gc in gcs)))) == (0, 0)

    clock.now = start + HOUR
    tallies = list(await asyncio.gather(*(gc.sweep(orphans=True) for gc in gcs)))
    tallies += await asyncio.gather(*(gc.sweep(orphans=True) for gc in gcs))

    assert _total(tallies) == (DUE, DUE)
    await _assert_collected_once(world, due, active_key)


async def test_without_the_lease_racing_gcs_still_expire_each_file_once(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    """A gc that stalled past its lease acts beside the new holder: the log's version check
    and idempotent deletes keep that safe."""
    due, active_key = await _setup(world)
    gcs = [make_gc(), make_gc()]
    for gc in gcs:
        await gc.replay()
        gc.coordination.hold = _always  # type: ignore[method-assign]
    clock.now = start + HOUR

    tallies = list(await asyncio.gather(*(gc.sweep(orphans=True) for gc in gcs)))

    assert _total(tallies)[0] == DUE
    await _assert_collected_once(world, due, active_key)


async def _always() -> bool:
    return True
