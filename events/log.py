"""`EventLog`: appending to, reading and tailing the event log on Redis Streams."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from importlib import resources
from typing import Any, cast

import msgspec
import redis.asyncio as aioredis

from batch_gateway.clock import Clock
from batch_gateway.errors import Conflict, Unavailable
from batch_gateway.events.archive import EventArchive, StreamEntries
from batch_gateway.events.envelope import (
    ORIGIN,
    Envelope,
    Recorded,
    StreamId,
    Unreadable,
    decode,
    encode,
)
from batch_gateway.events.keys import StreamKeys
from batch_gateway.events.types import Event
from batch_gateway.logs import request_id_var
from batch_gateway.redis_client import REDIS_OUTAGE
from batch_gateway.tracing import current_trace_context

# A caller's `tracestate` may run to 32 entries of 256 characters; longer than this it is not
# stored with each of a batch's events.
MAX_TRACESTATE_LENGTH = 512

_APPEND_LUA = resources.files("batch_gateway.events").joinpath("append.lua").read_text()
_RETIRE_LUA = resources.files("batch_gateway.events").joinpath("retire.lua").read_text()


class VersionConflict(Conflict):
    """The aggregate moved on since the writer read it: its view is stale."""

    default_code = "conflict"

    def __init__(self, aggregate_id: str, expected: int, actual: int) -> None:
        super().__init__(
            f"{aggregate_id} is at version {actual}, not {expected}; it was changed concurrently."
        )
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual


class ArchivedAggregate(Conflict):
    """The aggregate ended long ago and was archived: it can no longer change."""

    default_code = "conflict"

    def __init__(self, aggregate_id: str) -> None:
        super().__init__(f"{aggregate_id} has ended and was archived; it can no longer change.")
        self.aggregate_id = aggregate_id


class JobEntry(msgspec.Struct, frozen=True):
    """An entry for a job stream, appended atomically with the events that create the job."""

    stream: str
    aggregate_id: str

    def encode(self) -> bytes:
        return self.aggregate_id.encode()


class EventLog:
    """The source of truth. Appends are atomic and version-checked per aggregate."""

    def __init__(
        self,
        client: aioredis.Redis,
        keys: StreamKeys,
        clock: Clock,
        archive: EventArchive | None = None,
    ) -> None:
        self._redis = client
        self._keys = keys
        self._clock = clock
        self._append = client.register_script(_APPEND_LUA)
        self._retire = client.register_script(_RETIRE_LUA)
        self.archive = archive

    @property
    def keys(self) -> StreamKeys:
        return self._keys

    def prepare(
        self, aggregate_id: str, tenant: str, expected_version: int, events: Sequence[Event]
    ) -> list[Envelope]:
        """Envelopes for `events`, numbered on from `expected_version` (0 = a new aggregate),
        stamped with the current trace context so that whoever acts on them can continue it,
        and with the request id in context, so that their log lines can name it too."""
        now = self._clock()
        trace = current_trace_context()
        request_id = request_id_var.get()
        tracestate = trace.get("tracestate")
        if tracestate is not None and len(tracestate) > MAX_TRACESTATE_LENGTH:
            tracestate = None  # W3C lets a hop drop it; every event would carry it otherwise
        return [
            Envelope(
                event_id=f"evt_{uuid.uuid4().hex}",
                aggregate_id=aggregate_id,
                aggregate_version=expected_version + offset,
                tenant=tenant,
                occurred_at=now,
                event=event,
                traceparent=trace.get("traceparent"),
                tracestate=tracestate,
                request_id=request_id,
            )
            for offset, event in enumerate(events, start=1)
        ]

    async def append(
        self, aggregate_id: str, tenant: str, expected_version: int, events: Sequence[Event]
    ) -> list[Recorded]:
        """Append `events` to the aggregate, which must be at `expected_version` (0 = new)."""
        return await self.append_envelopes(
            self.prepare(aggregate_id, tenant, expected_version, events)
        )

    async def append_envelopes(
        self, envelopes: Sequence[Envelope], enqueue: JobEntry | None = None
    ) -> list[Recorded]:
        """Append prepared envelopes of one aggregate atomically, if it is still at the version
        the first one follows; with `enqueue`, also add that entry to a job stream in the same
        atomic step (so a job is queued if and only if its event is in the log)."""
        if not envelopes:
            return []
        first = envelopes[0]
        expected_version = first.aggregate_version - 1
        args: list[Any] = [expected_version, enqueue.encode() if enqueue else b""]
        for envelope in envelopes:
            args.extend(encode(envelope))
        partition_stream = self._keys.partition_stream(self._keys.partition_of(first.aggregate_id))
        keys = [
            partition_stream,
            self._keys.aggregate_stream(first.aggregate_id),
            self._keys.aggregate_version(first.aggregate_id),
            enqueue.stream if enqueue else partition_stream,
        ]
        try:
            result = await self._append(keys=keys, args=args)
        except REDIS_OUTAGE as error:
            raise Unavailable("The event log is unavailable; retry the request.") from error
        if int(result[0]) == 0:
            if int(result[1]) < 0:
                raise ArchivedAggregate(first.aggregate_id)
            raise VersionConflict(first.aggregate_id, expected_version, int(result[1]))
        return [
            Recorded(StreamId.parse(raw_id), envelope)
            for raw_id, envelope in zip(result[1:], envelopes, strict=True)
        ]

    async def version(self, aggregate_id: str) -> int:
        """The aggregate's version: 0 if it does not exist, negated once it is archived."""
        raw = await self._redis.get(self._keys.aggregate_version(aggregate_id))
        return int(raw) if raw is not None else 0

    async def retire(self, aggregate_id: str, version: int) -> bool:
        """Drop an archived aggregate's stream and snapshot from Redis, leaving a tombstone;
        False if something was appended to it after `version` (it is not retired then)."""
        keys = [
            self._keys.aggregate_version(aggregate_id),
            self._keys.aggregate_stream(aggregate_id),
            self._keys.aggregate_snapshot(aggregate_id),
            self._keys.aggregate_floor(aggregate_id),
        ]
        return bool(await self._retire(keys=keys, args=[version]))

    async def aggregate_floor(self, aggregate_id: str) -> StreamId | None:
        """Where a running aggregate's stream was trimmed to (None: it never was)."""
        raw = await self._redis.get(self._keys.aggregate_floor(aggregate_id))
        return None if raw is None else StreamId.parse(raw)

    async def trim_aggregate(self, aggregate_id: str, floor: StreamId) -> int:
        """Drop a running aggregate's entries below `floor` (archived first, as parts),
        recording the floor first: a reader below it reads the parts; returns how many went."""
        await self._redis.set(self._keys.aggregate_floor(aggregate_id), str(floor))
        stream = self._keys.aggregate_stream(aggregate_id)
        return int(await self._redis.xtrim(stream, minid=str(floor)))

    async def read(
        self, after: StreamId = ORIGIN, count: int = 1000, partition: int = 0
    ) -> list[Recorded]:
        """Up to `count` entries of a partition of the global stream that come after `after`."""
        return [_decoded(entry) for entry in await self._range(after, count, partition)]

    async def read_entries(
        self, after: StreamId = ORIGIN, count: int = 1000, partition: int = 0
    ) -> list[Recorded | Unreadable]:
        """As `read`, but an entry that does not decode comes back as `Unreadable` instead of
        failing the whole read (the projector sets such entries aside)."""
        entries = await self._range(after, count, partition)
        return [_decoded_or_unreadable(entry) for entry in entries]

    async def _range(self, after: StreamId, count: int, partition: int) -> StreamEntries:
        archived = await self._archived_after(after, partition)
        if archived:
            return archived
        entries = await self._redis.xrange(
            self._keys.partition_stream(partition), min=f"({after}", max="+", count=count
        )
        return cast(StreamEntries, entries)

    async def _archived_after(self, after: StreamId, partition: int) -> StreamEntries:
        """For a reader the trim has passed, the next archived segment's entries after
        `after` (the archive holds everything below the floor); nothing for the others."""
        if self.archive is None:
            return []
        floor = await self._redis.get(self._keys.log_floor(partition))
        if floor is None or StreamId(after.ms, after.seq + 1) >= StreamId.parse(floor):
            return []
        async for entries in self.archive.read_log(after, partition):
            if entries:
                return entries
        return []

    async def read_aggregate(self, aggregate_id: str, after: StreamId = ORIGIN) -> list[Recorded]:
        """The events of one aggregate after `after` (all of them by default), oldest first."""
        entries = await self._redis.xrange(
            self._keys.aggregate_stream(aggregate_id), min=f"({after}", max="+"
        )
        return [_decoded(entry) for entry in cast(StreamEntries, entries)]

    async def aggregate_entries(self, aggregate_id: str) -> StreamEntries:
        """The whole of one aggregate's stream, undecoded (what the archive stores)."""
        entries = await self._redis.xrange(self._keys.aggregate_stream(aggregate_id))
        return cast(StreamEntries, entries)

    @property
    def redis(self) -> aioredis.Redis:
        return self._redis

    async def tail(
        self, after: StreamId, *, block_ms: int, count: int = 1000, partition: int = 0
    ) -> list[Recorded]:
        """Entries of a partition after `after`, waiting up to `block_ms` for the first."""
        entries = await self._wait_for(partition, after, block_ms, count)
        return [_decoded(entry) for entry in entries]

    async def tail_entries(
        self, after: StreamId, *, block_ms: int, count: int = 1000, partition: int = 0
    ) -> list[Recorded | Unreadable]:
        """As `tail`, with undecodable entries as `Unreadable`."""
        entries = await self._wait_for(partition, after, block_ms, count)
        return [_decoded_or_unreadable(entry) for entry in entries]

    async def _wait_for(
        self, partition: int, after: StreamId, block_ms: int, count: int
    ) -> StreamEntries:
        if archived := await self._archived_after(after, partition):
            return archived
        stream = self._keys.partition_stream(partition)
        reply = await self._redis.xread({stream: str(after)}, count=count, block=block_ms)
        if not reply:
            return []
        # RESP2 shape, which the client is opened with: [[stream, entries]].
        return cast(list[tuple[bytes, StreamEntries]], reply)[0][1]


def decode_entries(entries: StreamEntries) -> list[Recorded]:
    """Entries as Redis (or the archive) holds them, decoded."""
    return [_decoded(entry) for entry in entries]


def _decoded(entry: tuple[bytes, dict[bytes, bytes]]) -> Recorded:
    raw_id, fields = entry
    return Recorded(StreamId.parse(raw_id), decode(fields[b"event"]))


def _decoded_or_unreadable(entry: tuple[bytes, dict[bytes, bytes]]) -> Recorded | Unreadable:
    try:
        return _decoded(entry)
    except (msgspec.DecodeError, msgspec.ValidationError, ValueError, KeyError) as error:
        # ValueError covers an unknown event type and a failed upcast; KeyError a missing field.
        raw_id, fields = entry
        document = fields.get(b"event", b"")
        return Unreadable(StreamId.parse(raw_id), document, f"{type(error).__name__}: {error}")
