"""The gc's schedule, snapshotted, so that a gc starts from it instead of from all history.

The log is trimmed once archived (ADR 0028), and replaying the archive at every start would
cost time in proportion to history. So the gc that acts saves, now and then, everything its
view holds (every live file and batch, the heap of what falls due, the cleanups still to run)
with the position in each partition it was folded up to, and registers those positions as a
reader of the log: the trim never passes them. A starting gc loads the snapshot and folds
only the log after it.

Like an aggregate's snapshot it is derived data: a missing or unreadable one (another
release's) makes the gc replay from the start of the log (the archive, then Redis).
"""

from __future__ import annotations

import logging
from typing import cast

import msgspec
import redis.asyncio as aioredis

from batch_gateway.events import StreamId
from batch_gateway.events.keys import StreamKeys
from batch_gateway.gc.schedule import Cleanup, ScheduleState

logger = logging.getLogger(__name__)

READER_NAME = "gc"


class PendingCleanup(msgspec.Struct, frozen=True):
    event: StreamId  # the event that called for the cleanup
    before: StreamId  # the event before it: the checkpoint while this one is pending
    cleanup: Cleanup
    partition: int = 0  # of the log, whose stream `event` and `before` are ids of


class ScheduleSnapshot(msgspec.Struct, frozen=True):
    positions: dict[int, StreamId]  # partition -> the last of its events folded in
    read: int  # how many events that took
    schedule: ScheduleState
    pending: list[PendingCleanup]


_decoder = msgspec.msgpack.Decoder(ScheduleSnapshot)


class ScheduleSnapshots:
    def __init__(self, client: aioredis.Redis, keys: StreamKeys) -> None:
        self._redis = client
        self._key = f"{keys.tag}:gc:schedule"

    async def load(self) -> ScheduleSnapshot | None:
        raw = await self._redis.get(self._key)
        if raw is None:
            return None
        try:
            return _decoder.decode(cast(bytes, raw))
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            logger.warning("ignoring the gc's schedule snapshot, replaying the log: %s", error)
            return None

    async def save(self, snapshot: ScheduleSnapshot) -> None:
        await self._redis.set(self._key, msgspec.msgpack.encode(snapshot))
