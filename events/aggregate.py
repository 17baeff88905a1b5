"""Folding an aggregate's events into its current state.

State is never stored twice: a command reads the aggregate's events, folds them with the
aggregate's `evolve` function and decides from the result (eventsourcing's `mutate`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TypeVar

from batch_gateway.events.envelope import Envelope

State = TypeVar("State")
Evolve = Callable[[State | None, Envelope], State]


class CorruptAggregate(RuntimeError):
    """An aggregate's events are out of order or belong to another aggregate."""


def fold(
    evolve: Evolve[State],
    envelopes: Iterable[Envelope],
    state: State | None = None,
    version: int = 0,
) -> tuple[State | None, int]:
    """Return the state after every envelope, and the version it is at (0 when new); from
    `state` at `version` (a snapshot, a state loaded before) when given."""
    aggregate_id: str | None = None
    for envelope in envelopes:
        if aggregate_id is None:
            aggregate_id = envelope.aggregate_id
        if envelope.aggregate_id != aggregate_id:
            raise CorruptAggregate(f"{envelope.aggregate_id} in the stream of {aggregate_id}")
        if envelope.aggregate_version != version + 1:
            raise CorruptAggregate(
                f"{aggregate_id}: version {envelope.aggregate_version} after {version}"
            )
        state = evolve(state, envelope)
        version = envelope.aggregate_version
    return state, version
