"""Every event type of the log, as frozen tagged msgspec Structs.

The tag is the event's public name and is never renamed. Each type carries the version of
its schema; evolve a type by adding fields with defaults, and when a change cannot be
expressed that way, bump `schema_version` and register an upcaster in `upcasting.py` so
old entries still decode (the log is never rewritten).
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from batch_gateway.events.batch_events import BATCH_EVENT_CLASSES, BatchEvent


class FileUploaded(msgspec.Struct, frozen=True, kw_only=True, tag="file.uploaded"):
    """A file's bytes are stored under `storage_key` and the file exists from now on."""

    schema_version: ClassVar[int] = 1

    filename: str
    purpose: str
    bytes: int
    created_at: int
    expires_at: int | None
    storage_key: str
    # Lines in the file, counted while it streamed in; later validation uses it as a hint.
    line_count: int


class FileDeleted(msgspec.Struct, frozen=True, kw_only=True, tag="file.deleted"):
    """The owner deleted the file; its bytes are removed and it leaves the API."""

    schema_version: ClassVar[int] = 1

    deleted_at: int


class FileExpired(msgspec.Struct, frozen=True, kw_only=True, tag="file.expired"):
    """The file reached its `expires_at`; its bytes are removed and it leaves the API."""

    schema_version: ClassVar[int] = 1

    expired_at: int


FileEvent = FileUploaded | FileDeleted | FileExpired

# The union of every event type of the log.
Event = FileEvent | BatchEvent

EVENT_TYPES: dict[str, type[Event]] = {
    str(cls.__struct_config__.tag): cls
    for cls in (FileUploaded, FileDeleted, FileExpired, *BATCH_EVENT_CLASSES)
}


def event_type_name(event: Event) -> str:
    return str(type(event).__struct_config__.tag)
