"""The event log: event types, their wire encoding, and the log on Redis Streams.

Every state change of a file or batch is an event appended here; PostgreSQL projections,
processors, subscribers and the garbage collector all read from it (see ADR 0002).
"""

from batch_gateway.events.envelope import Envelope, Recorded, StreamId, Unreadable
from batch_gateway.events.log import EventLog, VersionConflict
from batch_gateway.events.types import (
    Event,
    FileDeleted,
    FileEvent,
    FileExpired,
    FileUploaded,
)

__all__ = [
    "Envelope",
    "Event",
    "EventLog",
    "FileDeleted",
    "FileEvent",
    "FileExpired",
    "FileUploaded",
    "Recorded",
    "StreamId",
    "Unreadable",
    "VersionConflict",
]
