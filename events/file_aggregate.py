"""The file aggregate: what a file's events add up to."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

import msgspec

from batch_gateway.events.aggregate import CorruptAggregate
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.envelope import Envelope
from batch_gateway.events.types import FileDeleted, FileExpired, FileUploaded

FileLifecycle = Literal["active", "deleted", "expired"]

if TYPE_CHECKING:
    from batch_gateway.events.log import EventLog


class FileState(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    tenant: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    storage_key: str
    line_count: int
    lifecycle: FileLifecycle = "active"


def evolve_file(state: FileState | None, envelope: Envelope) -> FileState:
    event = envelope.event
    match event:
        case FileUploaded() if state is None:
            return FileState(
                id=envelope.aggregate_id,
                tenant=envelope.tenant,
                filename=event.filename,
                purpose=event.purpose,
                bytes=event.bytes,
                created_at=event.created_at,
                expires_at=event.expires_at,
                storage_key=event.storage_key,
                line_count=event.line_count,
            )
        case FileDeleted() if state is not None and state.lifecycle == "active":
            return msgspec.structs.replace(state, lifecycle="deleted")
        case FileExpired() if state is not None and state.lifecycle == "active":
            return msgspec.structs.replace(state, lifecycle="expired")
    raise CorruptAggregate(f"{type(event).__name__} cannot follow {state!r}")


def file_store(log: EventLog) -> AggregateStore[FileState]:
    """The files of `log`, loaded from their snapshots."""
    return AggregateStore(
        log, evolve_file, FileState, ended=lambda state: state.lifecycle != "active"
    )
