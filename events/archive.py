"""The event archive: the log's history in object storage, once Redis no longer holds it.

Two shapes, each object written whole and never changed (ADR 0028):

- The global stream, as ordered segments `events/log/[p<k>/]<first>_<last>.jsonl` (partition
  k's in `p<k>/`, ADR 0029), each line an
  entry as Redis held it (its id, its `type`, its `event` document). Which
  segments count is what the partition's `manifest.json` lists: a segment is written
  before the manifest names it, so a segment left by an archiver killed in between is never
  read, and the next run writes the same entries again under the name the manifest then gets.
- An ended aggregate, as `events/aggregates/<id>.jsonl`: its last snapshot on the first line,
  then every event of its own stream. A rewrite after a crash writes the same bytes.
- The oldest events of a long-running aggregate, as parts `events/aggregates/<id>/<first>_
  <last>.jsonl`, written before its stream is trimmed behind its snapshot (ADR 0028).

Entries come back in the shape Redis returns them (`(id, {b"type", b"event"})`), so the
decoders of the live log read the archive unchanged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

import msgspec

from batch_gateway.events.envelope import ORIGIN, StreamId
from batch_gateway.storage import ObjectNotFound, ObjectStorage
from batch_gateway.storage.keys import check_object_key

ARCHIVE_PREFIX = "events/"
_LOG_PREFIX = f"{ARCHIVE_PREFIX}log/"


def _log_prefix(partition: int) -> str:
    """Partition 0's segments where an unpartitioned log's are; partition k's in `p<k>/`."""
    return _LOG_PREFIX if partition == 0 else f"{_LOG_PREFIX}p{partition}/"


def _manifest_key(partition: int) -> str:
    return f"{_log_prefix(partition)}manifest.json"


StreamEntries = list[tuple[bytes, dict[bytes, bytes]]]


class ArchivedEntry(msgspec.Struct, frozen=True):
    id: str
    type: str
    # The document as a JSON string rather than embedded: an entry the log holds but no
    # decoder can read (the projector sets those aside) must still make a well-formed line.
    event: str


class Segment(msgspec.Struct, frozen=True):
    key: str
    first: str
    last: str
    entries: int

    @property
    def last_id(self) -> StreamId:
        return StreamId.parse(self.last)


class Manifest(msgspec.Struct, frozen=True):
    """The segments of the global stream, oldest first."""

    segments: tuple[Segment, ...] = ()

    @property
    def through(self) -> StreamId:
        """The id of the newest archived entry (0-0 when nothing is archived)."""
        return self.segments[-1].last_id if self.segments else ORIGIN


_entry_decoder = msgspec.json.Decoder(ArchivedEntry)
_manifest_decoder = msgspec.json.Decoder(Manifest)


class EventArchive:
    def __init__(self, storage: ObjectStorage) -> None:
        self._storage = storage

    async def manifest(self, partition: int = 0) -> Manifest:
        data = await self._read(_manifest_key(partition))
        return Manifest() if data is None else _manifest_decoder.decode(data)

    async def add_segment(
        self, manifest: Manifest, entries: StreamEntries, partition: int = 0
    ) -> Manifest:
        """Write `entries` (the partition's, right after `manifest.through`) as a segment,
        then the manifest that names it; returns that manifest."""
        first, last = entries[0][0].decode(), entries[-1][0].decode()
        key = f"{_log_prefix(partition)}{_sortable(first)}_{_sortable(last)}.jsonl"
        await self._write(key, _lines(entries))
        segment = Segment(key=key, first=first, last=last, entries=len(entries))
        grown = Manifest(segments=(*manifest.segments, segment))
        await self._write(_manifest_key(partition), msgspec.json.encode(grown))
        return grown

    async def read_log(
        self, after: StreamId = ORIGIN, partition: int = 0
    ) -> AsyncIterator[StreamEntries]:
        """The archived entries of a partition of the global stream after `after`, a segment
        at a time."""
        manifest = await self.manifest(partition)
        for segment in manifest.segments:
            if segment.last_id <= after:
                continue
            data = await self._read(segment.key)
            if data is None:
                raise ObjectNotFound(f"archive segment {segment.key} is missing")
            yield [entry for entry in _entries(data) if StreamId.parse(entry[0]) > after]

    async def put_aggregate(
        self, aggregate_id: str, snapshot: bytes, entries: StreamEntries
    ) -> None:
        """Archive an ended aggregate: its snapshot, then its own stream's entries."""
        await self._write(_aggregate_key(aggregate_id), snapshot + b"\n" + _lines(entries))

    async def aggregate_snapshot(self, aggregate_id: str) -> bytes | None:
        """The archived aggregate's last snapshot (None if it was never archived)."""
        data = await self._read(_aggregate_key(aggregate_id))
        return None if data is None else data.split(b"\n", 1)[0]

    async def read_aggregate(self, aggregate_id: str, after: StreamId | None) -> StreamEntries:
        """The archived aggregate's events after `after` (None: all), oldest first."""
        data = await self._read(_aggregate_key(aggregate_id))
        if data is None:
            return []
        entries = _entries(data.split(b"\n", 1)[1])
        if after is None:
            return entries
        return [entry for entry in entries if StreamId.parse(entry[0]) > after]

    async def put_part(self, aggregate_id: str, entries: StreamEntries) -> None:
        """Archive the oldest events of a running aggregate before its stream is trimmed."""
        first, last = entries[0][0].decode(), entries[-1][0].decode()
        name = f"{_sortable(first)}_{_sortable(last)}.jsonl"
        await self._write(check_object_key(_parts_prefix(aggregate_id) + name), _lines(entries))

    async def read_parts(
        self, aggregate_id: str, after: StreamId | None, *, limit: int | None = None
    ) -> StreamEntries:
        """The events archived as parts while the aggregate ran, after `after`, oldest first
        (from the parts that hold any, read until `limit` entries are found). Parts written
        again after a crash overlap; each entry comes back once."""
        prefix = _parts_prefix(aggregate_id)
        keys = sorted([stored.key async for stored in self._storage.list(prefix)])
        entries: StreamEntries = []
        last = after or ORIGIN
        for key in keys:
            if _last_of_part(key) <= last:
                continue  # named by its first and last ids: nothing after `after` in it
            for entry in _entries(await self._read(key) or b""):
                if StreamId.parse(entry[0]) > last:
                    entries.append(entry)
                    last = StreamId.parse(entry[0])
            if limit is not None and len(entries) >= limit:
                break
        return entries

    async def delete_parts(self, aggregate_id: str) -> None:
        """The parts of an aggregate whose whole archive object is written (it holds them)."""
        async for stored in self._storage.list(_parts_prefix(aggregate_id)):
            await self._storage.delete(stored.key)

    async def _read(self, key: str) -> bytes | None:
        try:
            async with await self._storage.read(key) as reader:
                return b"".join([chunk async for chunk in reader])
        except ObjectNotFound:
            return None

    async def _write(self, key: str, data: bytes) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            yield data

        await self._storage.write(key, chunks())


def _aggregate_key(aggregate_id: str) -> str:
    return check_object_key(f"{ARCHIVE_PREFIX}aggregates/{aggregate_id}.jsonl")


def _parts_prefix(aggregate_id: str) -> str:
    return check_object_key(f"{ARCHIVE_PREFIX}aggregates/{aggregate_id}") + "/"


def _last_of_part(key: str) -> StreamId:
    last = key.rsplit("_", 1)[1].removesuffix(".jsonl")
    return StreamId.parse(last) if last else ORIGIN


def _sortable(stream_id: str) -> str:
    """`<ms>-<seq>` padded so that names sort as ids do."""
    parsed = StreamId.parse(stream_id)
    return f"{parsed.ms:015d}-{parsed.seq:06d}"


def _lines(entries: StreamEntries) -> bytes:
    encoded: Sequence[bytes] = [
        msgspec.json.encode(
            ArchivedEntry(
                raw_id.decode(),
                fields[b"type"].decode(errors="replace"),
                fields[b"event"].decode(errors="replace"),
            )
        )
        for raw_id, fields in entries
    ]
    return b"".join(line + b"\n" for line in encoded)


def _entries(data: bytes) -> StreamEntries:
    entries: StreamEntries = []
    for line in data.splitlines():
        if line:
            entry = _entry_decoder.decode(line)
            fields = {b"type": entry.type.encode(), b"event": entry.event.encode()}
            entries.append((entry.id.encode(), fields))
    return entries
