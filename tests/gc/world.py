"""A small world of files and batches written straight to the log and storage, as the API
and processors would write them, for the gc to collect; and a clock the test moves."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

from batch_gateway.events import EventLog, FileDeleted, FileUploaded, Recorded
from batch_gateway.events.batch_events import (
    BatchCompleted,
    BatchCreated,
    BatchFinalizing,
    BatchInProgress,
    BatchProgress,
    BatchValidated,
    RequestCounts,
    Usage,
)
from batch_gateway.events.envelope import ORIGIN
from batch_gateway.events.types import event_type_name
from batch_gateway.storage import ObjectStorage, file_object_key, result_chunk_key

HOUR = 3600
DAY = 86_400
CHAT = "/v1/chat/completions"


class ManualClock:
    """Time that moves only when the test says so."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def requests(count: int) -> bytes:
    lines = (
        {
            "custom_id": f"r{i}",
            "method": "POST",
            "url": CHAT,
            "body": {"model": "m1", "messages": [{"role": "user", "content": f"hi {i}"}]},
        }
        for i in range(count)
    )
    return b"".join(json.dumps(line).encode() + b"\n" for line in lines)


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


class World:
    def __init__(self, log: EventLog, storage: ObjectStorage, now: int) -> None:
        self.log = log
        self.storage = storage
        self.now = now
        self.tenant = f"tenant-{uuid.uuid4().hex[:8]}"

    async def put(self, key: str, data: bytes = b"bytes\n") -> str:
        await self.storage.write(key, _one(data))
        return key

    async def upload(
        self, data: bytes = b"{}\n", *, expires_in: int | None = None, purpose: str = "batch"
    ) -> tuple[str, str]:
        """A file as the API uploads it: bytes first, then its event. Returns (id, key)."""
        file_id = f"file-{uuid.uuid4().hex[:24]}"
        key = await self.put(file_object_key(self.tenant, file_id), data)
        event = FileUploaded(
            filename="input.jsonl",
            purpose=purpose,
            bytes=len(data),
            created_at=self.now,
            expires_at=None if expires_in is None else self.now + expires_in,
            storage_key=key,
            line_count=data.count(b"\n"),
        )
        await self.log.append(file_id, self.tenant, 0, [event])
        return file_id, key

    async def delete_event_only(self, file_id: str) -> None:
        """The API's delete whose best-effort byte removal failed."""
        version = await self.log.version(file_id)
        await self.log.append(file_id, self.tenant, version, [FileDeleted(deleted_at=self.now)])

    async def batch(
        self, input_file_id: str, *, window: int = DAY, validated: bool = True, total: int = 0
    ) -> str:
        batch_id = f"batch_{uuid.uuid4().hex[:24]}"
        created = BatchCreated(
            input_file_id=input_file_id,
            endpoint=CHAT,
            completion_window="24h",
            created_at=self.now,
            expires_at=self.now + window,
        )
        events: list[BatchCreated | BatchValidated] = [created]
        if validated:
            events.append(
                BatchValidated(validated_at=self.now, total=total, models=["m1"], priority="normal")
            )
        await self.log.append(batch_id, self.tenant, 0, events)
        return batch_id

    async def claim(self, batch_id: str, processor: str = "p1") -> None:
        version = await self.log.version(batch_id)
        claim = BatchInProgress(claimed_at=self.now, processor=processor)
        await self.log.append(batch_id, self.tenant, version, [claim])

    async def commit_chunk(self, batch_id: str, chunk: str) -> str:
        key = await self.chunk(batch_id, chunk)
        version = await self.log.version(batch_id)
        progress = BatchProgress(request_counts=RequestCounts(), usage=Usage(), chunk=chunk)
        await self.log.append(batch_id, self.tenant, version, [progress])
        return key

    async def chunk(self, batch_id: str, chunk: str) -> str:
        """A chunk's object, committed or not."""
        return await self.put(result_chunk_key(self.tenant, batch_id, chunk, "output"))

    async def complete(self, batch_id: str) -> None:
        version = await self.log.version(batch_id)
        finalizing = BatchFinalizing(finalizing_at=self.now)
        done = BatchCompleted(completed_at=self.now, request_counts=RequestCounts(), usage=Usage())
        await self.log.append(batch_id, self.tenant, version, [finalizing, done])

    async def events(self, name: str | None = None) -> list[Recorded]:
        # Paged: once the gc has archived and trimmed, a read returns one archive segment.
        records: list[Recorded] = []
        while page := await self.log.read(records[-1].stream_id if records else ORIGIN):
            records.extend(page)
        if name is None:
            return records
        return [r for r in records if event_type_name(r.envelope.event) == name]

    async def exists(self, key: str) -> bool:
        return await self.storage.exists(key)
