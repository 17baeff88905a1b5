"""How far the gc has read one partition of the log, and what that partition's events called
for that is not done yet.

Each partition of the log (ADR 0029) is read on its own, with its own checkpoint: the stream
id up to which every cleanup its events called for is done (ADR 0014). A cleanup is queued
only for an event after the checkpoint, with the position before it, which is where the
checkpoint stays while the cleanup is pending.
"""

from __future__ import annotations

import collections

from batch_gateway.events import Recorded, StreamId
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.gc.schedule import Schedule
from batch_gateway.gc.schedule_snapshot import PendingCleanup


class LogCursor:
    def __init__(self, partition: int) -> None:
        self.partition = partition
        self.position = ORIGIN
        self.checkpoint: StreamId | None = None
        self.pending: collections.deque[PendingCleanup] = collections.deque()

    def fold(self, records: list[Recorded], schedule: Schedule) -> None:
        checkpoint = self.checkpoint or ORIGIN
        for record in records:
            cleanups = schedule.apply(record.envelope)
            if record.stream_id > checkpoint:
                self.pending.extend(
                    PendingCleanup(record.stream_id, self.position, cleanup, self.partition)
                    for cleanup in cleanups
                )
            self.position = record.stream_id

    def restore(self, position: StreamId, pending: list[PendingCleanup]) -> None:
        """Start from a schedule snapshot: its position, and its cleanups not done yet."""
        self.position = position
        checkpoint = self.checkpoint or ORIGIN
        self.pending.extend(p for p in pending if p.partition == self.partition)
        self.drop_done(checkpoint)

    def drop_done(self, checkpoint: StreamId) -> None:
        """Forget the cleanups at or before `checkpoint` (another gc did them)."""
        self.checkpoint = max(self.checkpoint or ORIGIN, checkpoint)
        while self.pending and self.pending[0].event <= checkpoint:
            self.pending.popleft()

    @property
    def done_up_to(self) -> StreamId:
        """Where the checkpoint may move: before the first pending cleanup, or the end read."""
        return self.pending[0].before if self.pending else self.position
