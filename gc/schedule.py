"""What the gc knows: every file and batch folded from the log, and a heap of what falls due.

The gc replays the global stream from its start (it is small: coarse events) and folds each
event with the aggregates' own `evolve` functions, so its view is the one writers have. From
that view it keeps a heap of due times: each file's `expires_at` and each batch's `expires_at`
(the end of its completion window). An entry is checked against the current view when it is
popped, so nothing ever has to be removed from the heap: a file deleted before it expired or
a batch that finished in time simply yields nothing.

Folding also yields the cleanups an event calls for (the bytes of a file that ended, the
leftovers of a batch that ended); the collector runs them and checkpoints its progress.
Nothing here does I/O.
"""

from __future__ import annotations

import heapq
import logging
from typing import Literal

import msgspec

from batch_gateway.errors import Conflict
from batch_gateway.events import Envelope, FileDeleted, FileExpired, FileUploaded
from batch_gateway.events.aggregate import CorruptAggregate
from batch_gateway.events.batch_aggregate import BatchState, BatchStatus, evolve_batch
from batch_gateway.events.file_aggregate import FileState, evolve_file

logger = logging.getLogger(__name__)

# A batch no processor has claimed yet, in these states, is the gc's to expire.
UNCLAIMED_EXPIRABLE: frozenset[BatchStatus] = frozenset({"validating", "in_progress"})


class RemoveFileBytes(msgspec.Struct, frozen=True, kw_only=True, tag="remove_file_bytes"):
    """A file was deleted or expired: its bytes go (the API's own delete is best-effort)."""

    file_id: str
    storage_key: str
    size: int


class EndBatch(msgspec.Struct, frozen=True, kw_only=True, tag="end_batch"):
    """A batch ended: its leftover result chunks and captured headers go (and an error file
    the gc made for it, unless the batch ended with it)."""

    batch_id: str
    tenant: str
    status: BatchStatus
    error_file_id: str | None


Cleanup = RemoveFileBytes | EndBatch


class DueFile(msgspec.Struct, frozen=True):
    file_id: str


class DueBatch(msgspec.Struct, frozen=True):
    batch_id: str


class DueRetirement(msgspec.Struct, frozen=True):
    """An aggregate ended longer than the retention ago: its events go to the archive."""

    kind: Literal["file", "batch"]
    aggregate_id: str


Due = DueFile | DueBatch | DueRetirement
_Kind = Literal["file", "batch", "retire_file", "retire_batch"]


class ScheduleState(msgspec.Struct, frozen=True):
    """Everything a `Schedule` knows, as its snapshot stores it (gc/schedule_snapshot.py)."""

    files: dict[str, FileState]
    batches: dict[str, BatchState]
    heap: list[tuple[float, _Kind, str]]
    readers: dict[str, set[str]]
    held: set[str]


class Schedule:
    def __init__(self, retention_seconds: float = 604_800.0) -> None:
        self.files: dict[str, FileState] = {}
        self.batches: dict[str, BatchState] = {}
        self._heap: list[tuple[float, _Kind, str]] = []
        # Input file id -> the unfinished batches that read it. An input file that falls due
        # while a batch still needs it waits in `_held` and expires once the last one ends.
        self._readers: dict[str, set[str]] = {}
        self._held: set[str] = set()
        self._active_keys: set[str] = set()
        self._retention = retention_seconds

    def state(self) -> ScheduleState:
        return ScheduleState(self.files, self.batches, self._heap, self._readers, self._held)

    def restore(self, state: ScheduleState) -> None:
        self.files, self.batches = state.files, state.batches
        self._heap, self._readers, self._held = state.heap, state.readers, state.held
        heapq.heapify(self._heap)
        self._active_keys = {f.storage_key for f in self.files.values() if f.lifecycle == "active"}

    def forget(self, item: DueRetirement) -> None:
        """Drop a retired aggregate from the view: the gc never needs it again."""
        if item.kind == "file":
            self.files.pop(item.aggregate_id, None)
        else:
            self.batches.pop(item.aggregate_id, None)

    def __len__(self) -> int:
        return len(self._heap)

    def apply(self, envelope: Envelope) -> list[Cleanup]:
        """Fold one event into the view; return the cleanups it calls for."""
        try:
            if isinstance(envelope.event, FileUploaded | FileDeleted | FileExpired):
                return self._apply_file(envelope)
            return self._apply_batch(envelope)
        except (CorruptAggregate, Conflict) as error:
            # The log accepted it, so writers agree it happened; our fold must not stop here.
            logger.warning("gc cannot fold %s: %s", envelope.event_id, error)
            return []

    def _apply_file(self, envelope: Envelope) -> list[Cleanup]:
        before = self.files.get(envelope.aggregate_id)
        state = evolve_file(before, envelope)
        self.files[state.id] = state
        if before is None:
            self._active_keys.add(state.storage_key)
            if state.expires_at is not None:
                self._push(state.expires_at, "file", state.id)
            return []
        self._active_keys.discard(state.storage_key)
        self._held.discard(state.id)
        if before.lifecycle == "active":
            self._push(envelope.occurred_at + self._retention, "retire_file", state.id)
        return [RemoveFileBytes(file_id=state.id, storage_key=state.storage_key, size=state.bytes)]

    def _apply_batch(self, envelope: Envelope) -> list[Cleanup]:
        before = self.batches.get(envelope.aggregate_id)
        state = evolve_batch(before, envelope)
        self.batches[state.id] = state
        if before is None:
            self._readers.setdefault(state.input_file_id, set()).add(state.id)
            self._push(state.expires_at, "batch", state.id)
        if not state.terminal or (before is not None and before.terminal):
            return []
        self._release_input(state)
        self._push(envelope.occurred_at + self._retention, "retire_batch", state.id)
        end = EndBatch(
            batch_id=state.id,
            tenant=state.tenant,
            status=state.status,
            error_file_id=state.error_file_id,
        )
        return [end]

    def _release_input(self, batch: BatchState) -> None:
        readers = self._readers.get(batch.input_file_id, set())
        readers.discard(batch.id)
        if readers:
            return
        self._readers.pop(batch.input_file_id, None)
        if batch.input_file_id in self._held:
            self._held.discard(batch.input_file_id)
            held = self.files[batch.input_file_id]
            assert held.expires_at is not None  # it was held because it fell due
            self._push(held.expires_at, "file", held.id)

    def pop_due(self, now: float) -> list[Due]:
        """Everything due at `now` that still calls for an expiry, in due order."""
        due: list[Due] = []
        while self._heap and self._heap[0][0] <= now:
            _, kind, aggregate_id = heapq.heappop(self._heap)
            if kind == "retire_file":
                due.append(DueRetirement("file", aggregate_id))
            elif kind == "retire_batch":
                due.append(DueRetirement("batch", aggregate_id))
            elif kind == "file":
                file = self.files.get(aggregate_id)
                if file is None or file.lifecycle != "active":
                    continue
                if self._readers.get(aggregate_id):
                    self._held.add(aggregate_id)  # an unfinished batch still reads it
                    continue
                due.append(DueFile(aggregate_id))
            elif self.expirable(aggregate_id):
                due.append(DueBatch(aggregate_id))
        return due

    def expirable(self, batch_id: str) -> bool:
        """Whether the batch is unfinished and no processor has claimed it (a claimed batch's
        processor ends it at the end of its window itself)."""
        batch = self.batches.get(batch_id)
        return batch is not None and batch.claims == 0 and batch.status in UNCLAIMED_EXPIRABLE

    def retry(self, item: Due, at: float) -> None:
        """Put back an item whose expiry failed (storage or Redis down), due again at `at`."""
        if isinstance(item, DueFile):
            self._push(at, "file", item.file_id)
        elif isinstance(item, DueBatch):
            self._push(at, "batch", item.batch_id)
        else:
            kind: _Kind = "retire_file" if item.kind == "file" else "retire_batch"
            self._push(at, kind, item.aggregate_id)

    def next_due(self) -> float | None:
        return self._heap[0][0] if self._heap else None

    def is_active_file(self, file_id: str) -> bool:
        file = self.files.get(file_id)
        return file is not None and file.lifecycle == "active"

    def is_active_file_key(self, key: str) -> bool:
        return key in self._active_keys

    def _push(self, at: float, kind: _Kind, aggregate_id: str) -> None:
        heapq.heappush(self._heap, (float(at), kind, aggregate_id))
