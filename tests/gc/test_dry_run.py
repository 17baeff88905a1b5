"""`--dry-run`: the gc reports what it would do and changes nothing."""

from __future__ import annotations

import redis.asyncio as aioredis

from batch_gateway.storage import file_object_key
from tests.gc.conftest import MakeGc
from tests.gc.world import DAY, HOUR, ManualClock, World, requests


async def test_a_dry_run_reports_everything_and_changes_nothing(
    world: World,
    make_gc: MakeGc,
    clock: ManualClock,
    start: int,
    redis_client: aioredis.Redis,
    key_prefix: str,
) -> None:
    _, due_key = await world.upload(b"due\n", expires_in=HOUR)
    deleted_id, deleted_key = await world.upload(b"deleted\n")
    await world.delete_event_only(deleted_id)
    input_id, input_key = await world.upload(requests(3))
    await world.batch(input_id, total=3)
    orphan = await world.put(file_object_key(world.tenant, "file-orphan"))
    keys = [due_key, deleted_key, input_key, orphan]
    events_before = len(await world.events())

    clock.now = start + 2 * DAY
    dry = make_gc(dry_run=True, orphan_grace_seconds=HOUR)
    tally = await dry.sweep(orphans=True)

    assert tally.expired == {"file": 1, "batch": 1}
    assert tally.deleted == {"file": 1, "orphan": 1}
    assert len(await world.events()) == events_before
    for key in keys:
        assert await world.exists(key), key
    assert await redis_client.keys(f"{{{key_prefix}}}:gc:*") == []

    # The same sweep for real does what the dry run said, and more: it also deletes the
    # bytes of the file it expires (a dry run appends no expiry, so it sees none).
    tally = await make_gc(orphan_grace_seconds=HOUR).sweep(orphans=True)
    assert tally.expired == {"file": 1, "batch": 1}
    assert tally.deleted == {"file": 2, "orphan": 1}
