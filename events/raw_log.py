"""Reading the event log as subscribers see it: each entry's stored `event` document, untouched.

`EventLog` decodes entries into typed events (and upcasts old ones) for the components that
act on them. Subscribers get the public JSON document itself, exactly as it was appended:
nothing is re-encoded, and an event type this code does not know yet passes through too.
"""

from __future__ import annotations

from typing import cast

import msgspec
import redis.asyncio as aioredis

from batch_gateway.events.archive import EventArchive
from batch_gateway.events.envelope import StreamId
from batch_gateway.events.keys import StreamKeys

_Entries = list[tuple[bytes, dict[bytes, bytes]]]


class _Head(msgspec.Struct, frozen=True):
    """The envelope fields a subscriber routes by; the rest of the document is not decoded."""

    aggregate_id: str
    tenant: str


_head_decoder = msgspec.json.Decoder(_Head)


class RawEntry(msgspec.Struct, frozen=True):
    stream_id: StreamId
    # The event's public name (`batch.completed`), as the entry's `type` field holds it.
    type: str
    # The public JSON document, as stored.
    document: bytes

    def head(self) -> tuple[str, str]:
        """(aggregate id, tenant) of the event."""
        head = _head_decoder.decode(self.document)
        return head.aggregate_id, head.tenant


class RawLog:
    def __init__(
        self, client: aioredis.Redis, keys: StreamKeys, archive: EventArchive | None = None
    ) -> None:
        self._redis = client
        self._keys = keys
        self._archive = archive

    async def read_aggregate(
        self, aggregate_id: str, after: StreamId | None, count: int
    ) -> list[RawEntry]:
        """Up to `count` entries of one aggregate's stream after `after` (None: from the start).
        What the archive holds comes from there, the same ids and documents it had in Redis:
        of an archived aggregate, every entry after `after` at once; of a running one trimmed
        past `after`, the archived parts (the next read goes on from the stream)."""
        if parts := await self._parts_after(aggregate_id, after, count):
            return _raw(parts)
        low = "-" if after is None else f"({after}"
        entries = await self._redis.xrange(
            self._keys.aggregate_stream(aggregate_id), min=low, max="+", count=count
        )
        if not entries and await self._archived(aggregate_id):
            assert self._archive is not None
            return _raw(await self._archive.read_aggregate(aggregate_id, after))
        return _raw(cast(_Entries, entries))

    async def _parts_after(self, aggregate_id: str, after: StreamId | None, count: int) -> _Entries:
        if self._archive is None:
            return []
        floor = await self._redis.get(self._keys.aggregate_floor(aggregate_id))
        if floor is None or (after is not None and after >= StreamId.parse(floor)):
            return []
        return (await self._archive.read_parts(aggregate_id, after, limit=count))[:count]

    async def _archived(self, aggregate_id: str) -> bool:
        if self._archive is None:
            return False
        version = await self._redis.get(self._keys.aggregate_version(aggregate_id))
        return version is not None and int(version) < 0

    async def first_of_aggregate(self, aggregate_id: str) -> RawEntry | None:
        entries = await self.read_aggregate(aggregate_id, None, 1)
        return entries[0] if entries else None

    async def last_of_aggregate(self, aggregate_id: str) -> RawEntry | None:
        entries = await self._redis.xrevrange(
            self._keys.aggregate_stream(aggregate_id), max="+", min="-", count=1
        )
        raw = _raw(cast(_Entries, entries))
        if not raw and await self._archived(aggregate_id):
            archived = await self.read_aggregate(aggregate_id, None, 1)
            return archived[-1] if archived else None
        return raw[0] if raw else None

    @property
    def partitions(self) -> range:
        return self._keys.every_partition

    async def last_global_id(self, partition: int = 0) -> StreamId:
        """The id of the newest entry of a partition of the global stream (0-0 if empty)."""
        stream = self._keys.partition_stream(partition)
        entries = await self._redis.xrevrange(stream, max="+", min="-", count=1)
        raw = cast(_Entries, entries)
        return StreamId.parse(raw[0][0]) if raw else StreamId(0, 0)

    async def tail_global(
        self, after: StreamId, *, block_ms: int, count: int, partition: int = 0
    ) -> list[RawEntry]:
        """Entries of a partition of the global stream after `after`, waiting up to
        `block_ms` for the first."""
        reply = await self._redis.xread(
            {self._keys.partition_stream(partition): str(after)}, count=count, block=block_ms
        )
        if not reply:
            return []
        # RESP2 shape, which the client is opened with: [[stream, entries]].
        return _raw(cast(list[tuple[bytes, _Entries]], reply)[0][1])


def _raw(entries: _Entries) -> list[RawEntry]:
    return [
        RawEntry(StreamId.parse(raw_id), fields[b"type"].decode(), fields[b"event"])
        for raw_id, fields in entries
    ]
