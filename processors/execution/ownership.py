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

from batch_gateway.events.aggregate_store import (
    UPDATE_ATTEMPTS,
    AggregateStore,
    Contended,
    Decision,
    Loaded,
)
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import BatchEvent, BatchInProgress
from batch_gateway.events.log import VersionConflict


class LostJob(Exception):
    """Another processor claimed the batch, or it ended: stop working on it."""


class Ownership:
    def __init__(self, store: AggregateStore[BatchState], loaded: Loaded[BatchState]) -> None:
        assert loaded.state is not None
        self._store = store
        self._loaded = loaded
        self.state: BatchState = loaded.state
        self.claim = self.state.claims

    @classmethod
    async def claim_batch(
        cls, store: AggregateStore[BatchState], batch_id: str, processor: str, now: int
    ) -> Ownership | None:
        """Claim the batch for `processor`; None when there is nothing to work on."""

        async def claim(state: BatchState | None) -> Decision:
            if state is None or state.terminal or state.status == "validating":
                return Decision()
            event = BatchInProgress(claimed_at=now, processor=processor, attempt=state.claims + 1)
            return Decision([event], state.tenant)

        try:
            loaded, recorded = await store.update(batch_id, claim)
        except Contended:
            return None
        return cls(store, loaded) if recorded else None

    async def refresh(self) -> BatchState:
        """Catch up with the batch (a cancel request, say), reading only the events appended
        since; raises LostJob if it is not ours any more."""
        loaded = await self._store.load_after(self.state.id, self._loaded)
        state = loaded.state
        if state is None or state.claims != self.claim or state.terminal:
            raise LostJob(self.state.id)
        self._loaded, self.state = loaded, state
        return state

    async def append(self, events: Sequence[BatchEvent]) -> BatchState:
        for _ in range(UPDATE_ATTEMPTS):
            try:
                loaded, _ = await self._store.append_loaded(
                    self.state.id, self.state.tenant, self._loaded, events
                )
            except VersionConflict:
                await self.refresh()
                continue
            assert loaded.state is not None
            self._loaded, self.state = loaded, loaded.state
            return self.state
        raise LostJob(f"{self.state.id} keeps changing under its processor")
