"""The envelope around every event and its encoding as a Redis stream entry.

On the wire an entry has two fields: `type` (the event's tag, so a reader can filter
without decoding) and `event`, the JSON document that is the public schema:

    {"id", "type", "schema_version", "aggregate_id", "aggregate_version",
     "tenant", "occurred_at", "data": {...the event's own fields...}}

plus, when the append ran within a trace, its W3C trace context: `traceparent` and
`tracestate` (absent otherwise; ADR 0017), and `request_id`, the `x-request-id` of the API call
the event descends from, when there is one (ADR 0018).
"""

from __future__ import annotations

import msgspec

from batch_gateway.events.types import EVENT_TYPES, Event, event_type_name
from batch_gateway.events.upcasting import UPCASTERS, Upcasters, upcast


class StreamId(msgspec.Struct, frozen=True, order=True):
    """A Redis stream entry id, `<ms>-<seq>`, ordered as the log orders entries."""

    ms: int
    seq: int

    @classmethod
    def parse(cls, raw: str | bytes) -> StreamId:
        text = raw.decode() if isinstance(raw, bytes) else raw
        ms, _, seq = text.partition("-")
        return cls(int(ms), int(seq or 0))

    def __str__(self) -> str:
        return f"{self.ms}-{self.seq}"


ORIGIN = StreamId(0, 0)


class Envelope(msgspec.Struct, frozen=True, kw_only=True):
    """An event together with the aggregate it belongs to and its place in that aggregate."""

    event_id: str
    aggregate_id: str
    aggregate_version: int
    tenant: str
    occurred_at: float
    event: Event
    # The W3C trace context of the operation that appended the event, if it was traced.
    traceparent: str | None = None
    tracestate: str | None = None
    # The API call the event descends from (a correlation id for logs), if any.
    request_id: str | None = None

    @property
    def trace_context(self) -> dict[str, str]:
        """`traceparent`/`tracestate` as a carrier to continue the trace from; empty if none."""
        carrier = {"traceparent": self.traceparent, "tracestate": self.tracestate}
        return {name: value for name, value in carrier.items() if value is not None}


class Recorded(msgspec.Struct, frozen=True):
    """An envelope as read back from the log, with the id the global stream gave it."""

    stream_id: StreamId
    envelope: Envelope


class Unreadable(msgspec.Struct, frozen=True):
    """An entry of the log that does not decode into an event this code knows: its document as
    stored, and why it could not be read."""

    stream_id: StreamId
    document: bytes
    error: str


class _Wire(msgspec.Struct, frozen=True, omit_defaults=True):
    id: str
    type: str
    schema_version: int
    aggregate_id: str
    aggregate_version: int
    tenant: str
    occurred_at: float
    data: msgspec.Raw
    # Left out of the document when absent: untraced events are byte for byte as before.
    traceparent: str | None = None
    tracestate: str | None = None
    request_id: str | None = None


_encoder = msgspec.json.Encoder()
_wire_decoder = msgspec.json.Decoder(_Wire)
_data_decoders = {name: msgspec.json.Decoder(cls) for name, cls in EVENT_TYPES.items()}


class UnknownEventType(ValueError):
    """An entry names an event type this code does not know (written by newer code)."""


def encode(envelope: Envelope) -> tuple[str, bytes]:
    """Return the entry's `type` field and its `event` document."""
    event = envelope.event
    name = event_type_name(event)
    data = msgspec.structs.asdict(event)
    wire = _Wire(
        id=envelope.event_id,
        type=name,
        schema_version=type(event).schema_version,
        aggregate_id=envelope.aggregate_id,
        aggregate_version=envelope.aggregate_version,
        tenant=envelope.tenant,
        occurred_at=envelope.occurred_at,
        data=msgspec.Raw(_encoder.encode(data)),
        traceparent=envelope.traceparent,
        tracestate=envelope.tracestate,
        request_id=envelope.request_id,
    )
    return name, _encoder.encode(wire)


def decode(document: bytes, upcasters: Upcasters = UPCASTERS) -> Envelope:
    """Decode an `event` document, upcasting entries written under older schema versions."""
    wire = _wire_decoder.decode(document)
    cls = EVENT_TYPES.get(wire.type)
    if cls is None:
        raise UnknownEventType(wire.type)
    if wire.schema_version >= cls.schema_version:
        # Newer writers only add fields with defaults within a version; unknown ones are ignored.
        event = _data_decoders[wire.type].decode(wire.data)
    else:
        old = msgspec.json.decode(wire.data)
        event = msgspec.convert(
            upcast(wire.type, wire.schema_version, old, cls.schema_version, upcasters), cls
        )
    return Envelope(
        event_id=wire.id,
        aggregate_id=wire.aggregate_id,
        aggregate_version=wire.aggregate_version,
        tenant=wire.tenant,
        occurred_at=wire.occurred_at,
        event=event,
        traceparent=wire.traceparent,
        tracestate=wire.tracestate,
        request_id=wire.request_id,
    )
