"""The wire encoding of events: round trips, the public document, unknown types, upcasting."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from batch_gateway.events import Envelope, Event, FileDeleted, StreamId
from batch_gateway.events.envelope import UnknownEventType, decode, encode
from batch_gateway.events.types import EVENT_TYPES, event_type_name
from batch_gateway.events.upcasting import UPCASTERS, Fields, MissingUpcaster, upcast
from tests.harness.file_events import envelope, uploaded

# What msgspec encodes as a JSON integer, and what the projections store as bigint.
_INTS = st.integers(min_value=-(2**63), max_value=2**63 - 1)


def _field_strategy(annotation: Any) -> st.SearchStrategy[Any]:
    if annotation is int:
        return _INTS
    if annotation == int | None:
        return st.none() | _INTS
    # Anything else (str, nested Structs, ...) as Hypothesis builds it from the type.
    return st.from_type(annotation)


def _event_strategy(cls: type[Event]) -> st.SearchStrategy[Event]:
    fields = {field.name: _field_strategy(field.type) for field in msgspec.structs.fields(cls)}
    return st.builds(cls, **fields)


EVENTS: st.SearchStrategy[Event] = st.one_of([_event_strategy(cls) for cls in EVENT_TYPES.values()])
ENVELOPES = st.builds(
    Envelope,
    event_id=st.text(min_size=1),
    aggregate_id=st.text(min_size=1),
    aggregate_version=st.integers(min_value=1, max_value=2**53),
    tenant=st.text(min_size=1),
    occurred_at=st.floats(allow_nan=False, allow_infinity=False),
    event=EVENTS,
)

PUBLIC_FIELDS = {
    "id",
    "type",
    "schema_version",
    "aggregate_id",
    "aggregate_version",
    "tenant",
    "occurred_at",
    "data",
}


@settings(max_examples=300)
@given(ENVELOPES)
def test_every_envelope_round_trips(original: Envelope) -> None:
    name, document = encode(original)
    assert name == event_type_name(original.event)
    assert decode(document) == original


@settings(max_examples=100)
@given(ENVELOPES)
def test_the_wire_document_is_the_public_schema(original: Envelope) -> None:
    name, document = encode(original)
    wire = json.loads(document)
    assert set(wire) == PUBLIC_FIELDS
    assert wire["type"] == name
    assert wire["id"] == original.event_id
    assert wire["aggregate_id"] == original.aggregate_id
    assert wire["aggregate_version"] == original.aggregate_version
    assert wire["tenant"] == original.tenant
    assert wire["schema_version"] == type(original.event).schema_version
    # `data` is exactly the event's own fields: no tag, no schema version inside.
    assert wire["data"] == msgspec.to_builtins(msgspec.structs.asdict(original.event))


def test_every_event_type_is_registered_under_its_tag() -> None:
    assert {"file.uploaded", "file.deleted", "file.expired"} <= set(EVENT_TYPES)
    for name, cls in EVENT_TYPES.items():
        assert cls.__struct_config__.tag == name
        assert cls.schema_version >= 1


def _document(
    type_name: str, data: dict[str, Any], schema_version: int = 1, **overrides: Any
) -> bytes:
    wire = {
        "id": "evt_1",
        "type": type_name,
        "schema_version": schema_version,
        "aggregate_id": "file-a",
        "aggregate_version": 1,
        "tenant": "acme",
        "occurred_at": 1.5,
        "data": data,
        **overrides,
    }
    return json.dumps(wire).encode()


def test_an_unknown_event_type_is_refused() -> None:
    with pytest.raises(UnknownEventType, match=r"file\.renamed"):
        decode(_document("file.renamed", {"name": "x"}))


def test_a_newer_document_of_the_same_version_ignores_fields_it_does_not_know() -> None:
    decoded = decode(_document("file.deleted", {"deleted_at": 7, "reason": "user"}))
    assert decoded.event == FileDeleted(deleted_at=7)


def test_a_document_from_an_unknown_older_version_without_upcaster_is_refused() -> None:
    with pytest.raises(MissingUpcaster, match=r"file\.deleted v0"):
        decode(_document("file.deleted", {"when": 7}, schema_version=0))


def _rename(old: str, new: str) -> Any:
    def step(fields: Fields) -> Fields:
        lifted = dict(fields)
        lifted[new] = lifted.pop(old)
        return lifted

    return step


def test_upcast_chains_one_step_per_version() -> None:
    upcasters = {
        ("file.deleted", 1): _rename("a", "b"),
        ("file.deleted", 2): _rename("b", "c"),
        ("file.deleted", 3): _rename("c", "d"),
        ("file.expired", 1): _rename("a", "wrong"),
    }
    assert upcast("file.deleted", 1, {"a": 1}, 4, upcasters) == {"d": 1}
    assert upcast("file.deleted", 2, {"b": 1}, 4, upcasters) == {"d": 1}
    # Nothing to do at the target version, whatever the fields are.
    assert upcast("file.deleted", 3, {"a": 1}, 3, upcasters) == {"a": 1}


def test_upcast_refuses_a_gap_in_the_chain() -> None:
    upcasters = {("file.deleted", 1): _rename("a", "b"), ("file.deleted", 3): _rename("c", "d")}
    with pytest.raises(MissingUpcaster, match=r"file\.deleted v2"):
        upcast("file.deleted", 1, {"a": 1}, 4, upcasters)


def test_the_registry_is_the_default() -> None:
    assert upcast("file.deleted", 1, {"deleted_at": 1}, 1) == {"deleted_at": 1}
    if not UPCASTERS:
        with pytest.raises(MissingUpcaster):
            upcast("file.deleted", 1, {"deleted_at": 1}, 2)


def test_decode_upcasts_an_old_document_to_the_current_event() -> None:
    upcasters = {
        ("file.deleted", -1): _rename("at", "when"),
        ("file.deleted", 0): _rename("when", "deleted_at"),
    }
    document = _document("file.deleted", {"at": 9}, schema_version=-1)
    assert decode(document, upcasters) == Envelope(
        event_id="evt_1",
        aggregate_id="file-a",
        aggregate_version=1,
        tenant="acme",
        occurred_at=1.5,
        event=FileDeleted(deleted_at=9),
    )


def test_a_round_trip_keeps_an_absent_expiry_absent() -> None:
    original = envelope(uploaded(expires_at=None), 1)
    assert decode(encode(original)[1]) == original


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1700000000000-0", StreamId(1700000000000, 0)),
        (b"1700000000000-17", StreamId(1700000000000, 17)),
        ("5", StreamId(5, 0)),
        ("0-0", StreamId(0, 0)),
    ],
)
def test_stream_id_parses_what_redis_returns(raw: str | bytes, expected: StreamId) -> None:
    assert StreamId.parse(raw) == expected


_STREAM_IDS = st.builds(
    StreamId, st.integers(min_value=0, max_value=2**63 - 1), st.integers(0, 2**63 - 1)
)


@given(_STREAM_IDS)
def test_stream_id_round_trips_through_its_text(stream_id: StreamId) -> None:
    assert StreamId.parse(str(stream_id)) == stream_id
    assert StreamId.parse(str(stream_id).encode()) == stream_id


@given(_STREAM_IDS, _STREAM_IDS)
def test_stream_ids_order_as_the_log_does(a: StreamId, b: StreamId) -> None:
    assert (a < b) == ((a.ms, a.seq) < (b.ms, b.seq))
    assert (a == b) == ((a.ms, a.seq) == (b.ms, b.seq))
    assert sorted([a, b]) == sorted([b, a])
