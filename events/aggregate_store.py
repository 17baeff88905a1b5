"""Loading an aggregate and appending to it only what its state machine allows.

`AggregateStore.load` folds the aggregate's events into its state; the caller decides on new
events from that state, and `append` checks each is a legal transition (the aggregate's
`evolve` raises otherwise) before appending them with the version the state was read at. A
writer that raced another gets `VersionConflict` and may decide again on the fresh state;
`update` is that load, decide, append, retry loop, written once.

No load costs time in proportion to the aggregate's history (ADR 0027): a cold load starts from
the aggregate's snapshot (written every `SNAPSHOT_EVERY` events, and when the aggregate ends)
and folds only the events after it, and a writer that holds an aggregate (`Loaded`) catches up
with `load_after`, which reads only what was appended since.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

import msgspec

from batch_gateway.errors import Unavailable
from batch_gateway.events.aggregate import Evolve, fold
from batch_gateway.events.envelope import ORIGIN, Recorded, StreamId
from batch_gateway.events.log import (
    ArchivedAggregate,
    EventLog,
    JobEntry,
    VersionConflict,
    decode_entries,
)
from batch_gateway.events.snapshots import Snapshot, SnapshotStore
from batch_gateway.events.types import Event

State = TypeVar("State")

SNAPSHOT_EVERY = 100
# A writer that loses this many races in a row on one aggregate gives up (`Contended`).
UPDATE_ATTEMPTS = 5


class Loaded(msgspec.Struct, Generic[State], frozen=True):
    """An aggregate's state, its version, and the stream id of the last event folded in."""

    state: State | None
    version: int
    position: StreamId = ORIGIN


class Decision(msgspec.Struct, frozen=True):
    """What `update`'s decide function wants appended (nothing: leave the aggregate as it is),
    under which tenant, and a job entry to enqueue atomically with it."""

    events: Sequence[Event] = ()
    tenant: str = ""
    enqueue: JobEntry | None = None


class Contended(Unavailable):
    """The aggregate kept changing under the writer; the caller may try again later."""


class AggregateStore(Generic[State]):
    def __init__(
        self,
        log: EventLog,
        evolve: Evolve[State],
        state_type: type[State] | None = None,
        ended: Callable[[State], bool] | None = None,
    ) -> None:
        self._log = log
        self._evolve = evolve
        # An aggregate that ended is snapshotted at once: its last state is what a reader of an
        # archived aggregate needs, and nothing will be appended after it.
        self._ended = ended
        # Without a state type (tests of toy aggregates), every load folds from the start.
        self._snapshots = (
            SnapshotStore(log.redis, log.keys, state_type) if state_type is not None else None
        )

    @property
    def log(self) -> EventLog:
        return self._log

    async def load(self, aggregate_id: str) -> tuple[State | None, int]:
        loaded = await self.load_loaded(aggregate_id)
        return loaded.state, loaded.version

    async def load_loaded(self, aggregate_id: str) -> Loaded[State]:
        """The aggregate as of now: its snapshot, if any, and the events after it; for an
        archived aggregate (Redis holds only its tombstone), its snapshot in the archive."""
        start: Loaded[State] = Loaded(None, 0)
        if self._snapshots is not None:
            snapshot = await self._snapshots.get(aggregate_id)
            if snapshot is not None:
                start = Loaded(snapshot.state, snapshot.version, snapshot.position)
        floor = await self._log.aggregate_floor(aggregate_id)
        if floor is not None and start.position < floor:
            # No snapshot as recent as the trim (an older release's, or one overwritten by a
            # slower writer): what the stream lost is in the archived parts.
            start = await self._load_parts(aggregate_id, start)
        loaded = await self.load_after(aggregate_id, start)
        if loaded.version == 0 and await self._log.version(aggregate_id) < 0:
            return await self._load_archived(aggregate_id)
        return loaded

    async def _load_parts(self, aggregate_id: str, start: Loaded[State]) -> Loaded[State]:
        archive = self._log.archive
        if archive is None:
            raise ArchivedAggregate(aggregate_id)  # a component with no archive cannot read it
        records = decode_entries(await archive.read_parts(aggregate_id, start.position))
        if not records:
            return start
        envelopes = (record.envelope for record in records)
        state, version = fold(self._evolve, envelopes, start.state, start.version)
        return Loaded(state, version, records[-1].stream_id)

    async def _load_archived(self, aggregate_id: str) -> Loaded[State]:
        archive = self._log.archive
        if archive is None or self._snapshots is None:
            raise ArchivedAggregate(aggregate_id)  # a component with no archive cannot read it
        raw = await archive.aggregate_snapshot(aggregate_id)
        snapshot = None if raw is None else self._snapshots.decode(aggregate_id, raw)
        if snapshot is None:
            raise ArchivedAggregate(aggregate_id)
        return Loaded(snapshot.state, snapshot.version, snapshot.position)

    async def load_after(self, aggregate_id: str, loaded: Loaded[State]) -> Loaded[State]:
        """`loaded` brought up to date by the events appended since it."""
        records = await self._log.read_aggregate(aggregate_id, loaded.position)
        if not records:
            return loaded
        state, version = fold(
            self._evolve, (r.envelope for r in records), loaded.state, loaded.version
        )
        fresh = Loaded(state, version, records[-1].stream_id)
        await self._snapshot_if_due(aggregate_id, loaded.version, fresh)
        return fresh

    async def append(
        self,
        aggregate_id: str,
        tenant: str,
        state: State | None,
        version: int,
        events: Sequence[Event],
        enqueue: JobEntry | None = None,
    ) -> tuple[State, list[Recorded]]:
        """Append `events` on top of `state` (read at `version`); returns the new state."""
        loaded, recorded = await self.append_loaded(
            aggregate_id, tenant, Loaded(state, version), events, enqueue
        )
        assert loaded.state is not None
        return loaded.state, recorded

    async def append_loaded(
        self,
        aggregate_id: str,
        tenant: str,
        loaded: Loaded[State],
        events: Sequence[Event],
        enqueue: JobEntry | None = None,
    ) -> tuple[Loaded[State], list[Recorded]]:
        """`append` for a writer that holds the aggregate: returns it as of the append."""
        envelopes = self._log.prepare(aggregate_id, tenant, loaded.version, events)
        state = loaded.state
        for envelope in envelopes:
            state = self._evolve(state, envelope)  # raises on an illegal transition
        recorded = await self._log.append_envelopes(envelopes, enqueue)
        if not recorded:
            return loaded, recorded
        last = recorded[-1]
        fresh = Loaded(state, last.envelope.aggregate_version, last.stream_id)
        await self._snapshot_if_due(aggregate_id, loaded.version, fresh)
        return fresh, recorded

    async def update(
        self,
        aggregate_id: str,
        decide: Callable[[State | None], Awaitable[Decision]],
        *,
        attempts: int = UPDATE_ATTEMPTS,
    ) -> tuple[Loaded[State], list[Recorded]]:
        """Load the aggregate, ask `decide` what to append, append it; on a conflict, load
        and decide again. Returns the aggregate as left and what was appended (nothing when
        `decide` chose nothing); raises `Contended` after `attempts` lost races, and whatever
        `decide` raises to refuse."""
        for _ in range(attempts):
            loaded = await self.load_loaded(aggregate_id)
            decision = await decide(loaded.state)
            if not decision.events:
                return loaded, []
            assert decision.tenant, "a decision to append names the aggregate's tenant"
            try:
                return await self.append_loaded(
                    aggregate_id, decision.tenant, loaded, decision.events, decision.enqueue
                )
            except VersionConflict:
                continue
        raise Contended(f"{aggregate_id} keeps changing concurrently; retry the request.")

    async def retire(self, aggregate_id: str) -> bool:
        """Archive an ended aggregate (its snapshot and its stream) and drop it from Redis,
        leaving a tombstone; False if it has not ended, is gone, or moved on meanwhile.
        Idempotent: run again after a crash at any point, it writes the same archive object."""
        archive = self._log.archive
        assert archive is not None, "retiring needs the log's archive"
        assert self._snapshots is not None, "retiring needs a state type to snapshot"
        loaded = await self.load_loaded(aggregate_id)
        if loaded.state is None or self._ended is None or not self._ended(loaded.state):
            return False
        if await self._log.version(aggregate_id) < 0:
            return True  # retired already (this load came from the archive)
        snapshot = Snapshot(loaded.version, loaded.position, loaded.state)
        # What was archived in parts while it ran, then what its stream holds after them (a
        # part written by a run that died before the trim is in both).
        entries = await archive.read_parts(aggregate_id, None)
        archived = StreamId.parse(entries[-1][0]) if entries else ORIGIN
        entries += [
            entry
            for entry in await self._log.aggregate_entries(aggregate_id)
            if StreamId.parse(entry[0]) > archived
        ]
        await archive.put_aggregate(aggregate_id, msgspec.json.encode(snapshot), entries)
        if not await self._log.retire(aggregate_id, loaded.version):
            return False
        await archive.delete_parts(aggregate_id)  # the whole object holds them now
        return True

    async def _snapshot_if_due(self, aggregate_id: str, before: int, loaded: Loaded[State]) -> None:
        """Snapshot `loaded` (reached from version `before`) when it crossed a multiple of
        `SNAPSHOT_EVERY`, or when the aggregate has ended."""
        if self._snapshots is None or loaded.state is None:
            return
        crossed = loaded.version // SNAPSHOT_EVERY > before // SNAPSHOT_EVERY
        if crossed or (self._ended is not None and self._ended(loaded.state)):
            snapshot = Snapshot(loaded.version, loaded.position, loaded.state)
            await self._snapshots.put(aggregate_id, snapshot)
