"""Loading an aggregate and appending to it only what its state machine allows.

`AggregateStore.load` folds the aggregate's events into its state; the caller decides on new
events from that state, and `append` checks each is a legal transition (the aggregate's
`evolve` raises otherwise) before appending them with the version the state was read at. A
writer that raced another gets `VersionConflict` and may decide again on the fresh state.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

from batch_gateway.events.aggregate import Evolve, fold
from batch_gateway.events.envelope import Recorded
from batch_gateway.events.log import EventLog, JobEntry
from batch_gateway.events.types import Event

State = TypeVar("State")


class AggregateStore(Generic[State]):
    def __init__(self, log: EventLog, evolve: Evolve[State]) -> None:
        self._log = log
        self._evolve = evolve

    @property
    def log(self) -> EventLog:
        return self._log

    async def load(self, aggregate_id: str) -> tuple[State | None, int]:
        records = await self._log.read_aggregate(aggregate_id)
        return fold(self._evolve, (record.envelope for record in records))

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
        envelopes = self._log.prepare(aggregate_id, tenant, version, events)
        for envelope in envelopes:
            state = self._evolve(state, envelope)  # raises on an illegal transition
        recorded = await self._log.append_envelopes(envelopes, enqueue)
        assert state is not None
        return state, recorded
