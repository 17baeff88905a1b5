"""The orphan sweep: objects nothing refers to go once older than the grace period; what a
file or an unfinished batch still needs is never touched."""

from __future__ import annotations

from pathlib import Path

from batch_gateway.storage import StorageSettings, file_object_key, result_chunk_key
from batch_gateway.storage.partial_file import PARTIAL_SUFFIX
from tests.gc.conftest import MakeGc
from tests.gc.world import HOUR, ManualClock, World

GRACE = HOUR


async def _partial(world: World, settings: StorageSettings, key: str) -> str:
    """A temp file a crashed write left (only the filesystem plug-in makes them; on S3 an
    object of that name is treated alike)."""
    if settings.kind == "filesystem":
        path = Path(settings.fs_root) / key
        path.write_bytes(b"half a wri")
        return key
    return await world.put(key)


async def test_orphans_older_than_the_grace_period_go_and_nothing_else_does(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    storage_settings: StorageSettings,
) -> None:
    input_id, input_key = await world.upload(b"{}\n")
    live = await world.batch(input_id, total=1)
    await world.claim(live)
    live_chunks = [await world.commit_chunk(live, "1-1"), await world.chunk(live, "1-2")]
    ended = await world.batch(input_id, total=1)
    await world.claim(ended)
    await world.complete(ended)
    crashed_upload = await world.put(file_object_key(world.tenant, "file-neverannounced"))
    partial = await _partial(world, storage_settings, f"{input_key}.0123abcd{PARTIAL_SUFFIX}")
    unknown_batch_chunk = await world.put(
        result_chunk_key(world.tenant, "batch_unknown", "1-1", "errors")
    )
    forged = await world.put(result_chunk_key("someone-else", live, "1-9", "output"))
    elsewhere = await world.put("other/thing.txt")
    gc = make_gc(orphan_grace_seconds=GRACE)
    await gc.sweep(orphans=False)  # the ended batch's own cleanup has run
    late_chunk = await world.chunk(ended, "1-7")  # a processor that lost the job, writing late

    clock.now = start + GRACE - 60
    young = await gc.sweep(orphans=True)
    assert not young.deleted

    clock.now = start + GRACE + 60
    old = await gc.sweep(orphans=True)

    removed = [crashed_upload, partial, unknown_batch_chunk, forged, late_chunk]
    assert old.deleted == {"orphan": len(removed)}
    for key in removed:
        assert not await world.exists(key), key
    for key in [input_key, *live_chunks, elsewhere]:
        assert await world.exists(key), key


async def test_the_orphan_sweep_runs_on_its_interval(
    world: World, make_gc: MakeGc, clock: ManualClock, start: int
) -> None:
    orphan = await world.put(file_object_key(world.tenant, "file-orphan"))
    gc = make_gc(orphan_grace_seconds=0, orphan_sweep_interval_seconds=HOUR)
    clock.now = start + 1
    assert (await gc.sweep()).deleted == {"orphan": 1}, "the first sweep looks"
    assert not await world.exists(orphan)

    another = await world.put(file_object_key(world.tenant, "file-another"))
    clock.now = start + HOUR - 1
    assert not (await gc.sweep()).deleted
    clock.now = start + HOUR + 2
    assert (await gc.sweep()).deleted == {"orphan": 1}
    assert not await world.exists(another)
