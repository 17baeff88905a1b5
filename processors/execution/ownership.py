"""A processor's hold on one slice of a batch: the claim event it appended, fenced appends.

Ownership is the pending slice entry plus a heartbeat, but what makes it safe is the log: a
processor claims a slice by appending `batch.in_progress` for it (the slice's claim count
becomes its claim number) and appends everything after that with the version it last saw.
When another processor reclaims the slice, its claim bumps the count: our next append
conflicts, we reload, see a claim number that is not ours, and raise `LostJob`. Events that do
not take the slice away (another slice's progress, a cancel request from the API) just mean:
reload, decide again and append (ADR 0030).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from batch_gateway.events.aggregate_store import (
    AggregateStore,
    Contended,
    Decision,
    Loaded,
)
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import BatchEvent, BatchInProgress
from batch_gateway.events.log import VersionConflict

# Every slice of a batch appends to the batch's stream: more races than one writer meets.
APPEND_ATTEMPTS = 20


class LostJob(Exception):
    """Another processor claimed the batch, or it ended: stop working on it."""


class Ownership:
    def __init__(
        self, store: AggregateStore[BatchState], loaded: Loaded[BatchState], slice_number: int
    ) -> None:
        assert loaded.state is not None
        self._store = store
        self._loaded = loaded
        self.state: BatchState = loaded.state
        self.slice = slice_number
        self.claim = self.state.slice_claims.get(slice_number, 0)

    @classmethod
    async def claim_slice(
        cls,
        store: AggregateStore[BatchState],
        batch_id: str,
        slice_number: int,
        processor: str,
        now: int,
    ) -> Ownership | None:
        """Claim the slice for `processor`; None when there is nothing to do for it: the batch
        ended, the slice is done (and finalizing the batch is not its part), or no such slice."""

        async def claim(state: BatchState | None) -> Decision:
            if state is None or state.terminal or state.status == "validating":
                return Decision()
            if slice_number >= state.slice_count:
                return Decision()
            if slice_number in state.slices_done and state.finalizer_slice != slice_number:
                return Decision()
            attempt = state.slice_claims.get(slice_number, 0) + 1
            event = BatchInProgress(
                claimed_at=now, processor=processor, attempt=attempt, slice=slice_number
            )
            return Decision([event], state.tenant)

        try:
            loaded, recorded = await store.update(batch_id, claim)
        except Contended:
            return None
        return cls(store, loaded, slice_number) if recorded else None

    async def refresh(self) -> BatchState:
        """Catch up with the batch (a cancel request, say), reading only the events appended
        since; raises LostJob if the slice is not ours any more."""
        loaded = await self._store.load_after(self.state.id, self._loaded)
        state = loaded.state
        if state is None or state.slice_claims.get(self.slice) != self.claim or state.terminal:
            raise LostJob(self.state.id)
        self._loaded, self.state = loaded, state
        return state

    async def append(self, events: Sequence[BatchEvent]) -> BatchState:
        return await self.update(lambda _: events)

    async def update(self, decide: Callable[[BatchState], Sequence[BatchEvent]]) -> BatchState:
        """Append what `decide` makes of the batch as it is now; on a conflict (another
        slice's commit, say) reload and decide again."""
        for _ in range(APPEND_ATTEMPTS):
            try:
                loaded, _ = await self._store.append_loaded(
                    self.state.id, self.state.tenant, self._loaded, decide(self.state)
                )
            except VersionConflict:
                await self.refresh()
                continue
            assert loaded.state is not None
            self._loaded, self.state = loaded, loaded.state
            return self.state
        raise LostJob(f"{self.state.id} keeps changing under its processor")
