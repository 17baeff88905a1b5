"""File events and envelopes with plausible defaults, for tests that need some."""

from __future__ import annotations

import uuid

from batch_gateway.events import (
    Envelope,
    Event,
    EventLog,
    FileDeleted,
    FileExpired,
    FileUploaded,
)


def new_file_id() -> str:
    return f"file-{uuid.uuid4().hex[:24]}"


def uploaded(
    *,
    filename: str = "input.jsonl",
    purpose: str = "batch",
    size: int = 42,
    created_at: int = 1_700_000_000,
    expires_at: int | None = None,
    storage_key: str = "default/file-x",
    line_count: int = 3,
) -> FileUploaded:
    return FileUploaded(
        filename=filename,
        purpose=purpose,
        bytes=size,
        created_at=created_at,
        expires_at=expires_at,
        storage_key=storage_key,
        line_count=line_count,
    )


def deleted(at: int = 1_700_000_100) -> FileDeleted:
    return FileDeleted(deleted_at=at)


def expired(at: int = 1_700_000_200) -> FileExpired:
    return FileExpired(expired_at=at)


def envelope(
    event: Event, version: int, *, aggregate_id: str = "file-a", tenant: str = "acme"
) -> Envelope:
    return Envelope(
        event_id=f"evt_{uuid.uuid4().hex}",
        aggregate_id=aggregate_id,
        aggregate_version=version,
        tenant=tenant,
        occurred_at=1_700_000_000.5,
        event=event,
    )


async def upload_file(
    log: EventLog, tenant: str = "acme", *, purpose: str = "batch", file_id: str | None = None
) -> str:
    """Append the upload of a new file and return its id."""
    file_id = file_id or new_file_id()
    await log.append(
        file_id, tenant, 0, [uploaded(purpose=purpose, storage_key=f"{tenant}/{file_id}")]
    )
    return file_id


async def delete_file(log: EventLog, file_id: str, tenant: str = "acme") -> None:
    await log.append(file_id, tenant, await log.version(file_id), [deleted()])
