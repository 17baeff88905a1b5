"""Snapshots of aggregates: a folded state and where in the aggregate's stream it stands.

Folding an aggregate from its first event costs time in proportion to its history, and a batch
that commits a chunk a second for hours has tens of thousands of events. A snapshot stores the
state at some version together with the stream id of the last event folded into it; a cold load
reads the snapshot and folds only the events after it (ADR 0027).

A snapshot is derived data, never the truth: a missing, stale or unreadable one only makes a
load read more of the stream, so snapshots are written without coordination (a stale writer
overwriting a fresher snapshot costs a longer tail, nothing else) and read leniently.
"""

from __future__ import annotations

import logging
from typing import Generic, TypeVar, cast

import msgspec
import redis.asyncio as aioredis

from batch_gateway.events.envelope import StreamId
from batch_gateway.events.keys import StreamKeys

logger = logging.getLogger(__name__)

State = TypeVar("State")


class Snapshot(msgspec.Struct, Generic[State], frozen=True):
    version: int
    position: StreamId  # the stream id of the event at `version`
    state: State


class _Head(msgspec.Struct, frozen=True):
    position: StreamId


_head_decoder = msgspec.json.Decoder(_Head)


async def snapshot_position(
    client: aioredis.Redis, keys: StreamKeys, aggregate_id: str
) -> StreamId | None:
    """Where the aggregate's snapshot stands, its state left undecoded (None: no snapshot,
    or one this release cannot read)."""
    raw = await client.get(keys.aggregate_snapshot(aggregate_id))
    try:
        return None if raw is None else _head_decoder.decode(cast(bytes, raw)).position
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


class SnapshotStore(Generic[State]):
    def __init__(self, client: aioredis.Redis, keys: StreamKeys, state_type: type[State]) -> None:
        self._redis = client
        self._keys = keys
        self._decoder = msgspec.json.Decoder(Snapshot[state_type])  # type: ignore[valid-type]

    async def get(self, aggregate_id: str) -> Snapshot[State] | None:
        raw = await self._redis.get(self._keys.aggregate_snapshot(aggregate_id))
        return None if raw is None else self.decode(aggregate_id, cast(bytes, raw))

    def decode(self, aggregate_id: str, raw: bytes) -> Snapshot[State] | None:
        try:
            snapshot: Snapshot[State] = self._decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as error:
            # Written by an older release whose state had other fields: fold from the start.
            logger.warning("ignoring the snapshot of %s: %s", aggregate_id, error)
            return None
        return snapshot

    async def put(self, aggregate_id: str, snapshot: Snapshot[State]) -> None:
        await self._redis.set(
            self._keys.aggregate_snapshot(aggregate_id), msgspec.json.encode(snapshot)
        )
