"""Setting aside what the projections cannot apply, so that one bad entry stops nothing else.

An entry of the log can be impossible to apply: a document this release cannot decode (written
by newer code, or damaged), or an event a projection's SQL rejects (a value PostgreSQL refuses,
a bug). Retrying it forever would stall every projection behind it; skipping it silently would
lose it. So it is written whole to `dead_letters` in the transaction that moves the checkpoint
past it (exactly once, like any applied event), logged, and counted in
`batch_gateway_projector_dead_letters_total`, which an alert watches (ADR 0024).
"""

from __future__ import annotations

import logging

import msgspec
from prometheus_client import Counter
from psycopg import AsyncCursor
from psycopg.rows import TupleRow

from batch_gateway.events import Recorded, Unreadable
from batch_gateway.events.envelope import encode

logger = logging.getLogger(__name__)

DEAD_LETTERS = Counter(
    "batch_gateway_projector_dead_letters_total",
    "Entries of the log the projections could not apply, set aside in the dead_letters table.",
)

_INSERT = """
INSERT INTO dead_letters
    (stream_ms, stream_seq, event_id, event_type, aggregate_id, document, error)
VALUES (%s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (stream_ms, stream_seq) DO NOTHING
"""


class DeadLetter(msgspec.Struct, frozen=True):
    """A log entry set aside, and why."""

    entry: Recorded | Unreadable
    error: str


async def set_aside(cursor: AsyncCursor[TupleRow], dead: DeadLetter) -> None:
    """Record a dead letter in the current transaction."""
    event_id, event_type, aggregate_id, document = _described(dead.entry)
    position = dead.entry.stream_id
    await cursor.execute(
        _INSERT,
        (position.ms, position.seq, event_id, event_type, aggregate_id, document, dead.error),
    )


def report(dead_letters: list[DeadLetter]) -> None:
    """Log and count dead letters once their transaction has committed."""
    for dead in dead_letters:
        event_id, event_type, aggregate_id, _ = _described(dead.entry)
        # Ids and the error only: the document may carry a tenant's metadata.
        what = f"{event_type} {event_id} of {aggregate_id}" if event_type else "undecodable"
        logger.error(
            "projections cannot apply log entry %s (%s); set aside as a dead letter: %s",
            dead.entry.stream_id,
            what,
            dead.error,
        )
    DEAD_LETTERS.inc(len(dead_letters))


def _described(entry: Recorded | Unreadable) -> tuple[str | None, str | None, str | None, bytes]:
    """(event id, event type, aggregate id, document) of an entry, as far as it can be read."""
    if isinstance(entry, Unreadable):
        return None, None, None, entry.document
    envelope = entry.envelope
    event_type, document = encode(envelope)
    return envelope.event_id, event_type, envelope.aggregate_id, document
