"""A processor's hold on one batch: the claim event it appended, and fenced appends.

Ownership is the pending job entry plus a heartbeat, but what makes it safe is the log: a
processor claims a batch by appending `batch.in_progress` (the batch's `claims` count becomes
its claim number) and appends everything after that with the version it last saw. When
another processor reclaims the job, its claim bumps the count: our next append conflicts, we
reload, see a claim number that is not ours, and raise `LostJob`. Events by others that do
not take the job away (a cancel request from the API) just mean: reload and append again.
"""

from __future__ import annotations

from collections.abc import Sequence

from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import BatchEvent, BatchInProgress
from batch_gateway.events.log import VersionConflict

_ATTEMPTS = 5


class LostJob(Exception):
    """Another processor claimed the batch, or it ended: stop working on it."""


class Ownership:
    def __init__(self, store: AggregateStore[BatchState], state: BatchState, version: int) -> None:
        self._store = store
        self.state = state
        self._version = version
        self.claim = state.claims

    @classmethod
    async def claim_batch(
        cls, store: AggregateStore[BatchState], batch_id: str, processor: str, now: int
    ) -> Ownership | None:
        """Claim the batch for `processor`; None when there is nothing to work on."""
        for _ in range(_ATTEMPTS):
            state, version = await store.load(batch_id)
            if state is None or state.terminal or state.status == "validating":
                return None
            event = BatchInProgress(claimed_at=now, processor=processor, attempt=state.claims + 1)
            try:
                new_state, recorded = await store.append(
                    batch_id, state.tenant, state, version, [event]
                )
            except VersionConflict:
                continue
            return cls(store, new_state, recorded[-1].envelope.aggregate_version)
        return None

    async def refresh(self) -> BatchState:
        """Reload the batch (to see a cancel request, say); raises LostJob if it is not ours."""
        state, version = await self._store.load(self.state.id)
        if state is None or state.claims != self.claim or state.terminal:
            raise LostJob(self.state.id)
        self.state, self._version = state, version
        return state

    async def append(self, events: Sequence[BatchEvent]) -> BatchState:
        for _ in range(_ATTEMPTS):
            try:
                state, recorded = await self._store.append(
                    self.state.id, self.state.tenant, self.state, self._version, events
                )
            except VersionConflict:
                await self.refresh()
                continue
            self.state, self._version = state, recorded[-1].envelope.aggregate_version
            return state
        raise LostJob(f"{self.state.id} keeps changing under its processor")
