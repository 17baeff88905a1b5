"""Folding a file's events into its state, and what the fold refuses."""

from __future__ import annotations

import msgspec
import pytest

from batch_gateway.events import Envelope, Event, EventLog
from batch_gateway.events.aggregate import CorruptAggregate, fold
from batch_gateway.events.file_aggregate import FileState, evolve_file
from tests.harness.file_events import deleted, envelope, expired, new_file_id, uploaded

UPLOAD = uploaded(
    filename="in.jsonl",
    purpose="batch",
    size=10,
    created_at=100,
    expires_at=200,
    storage_key="acme/file-a",
    line_count=2,
)
ACTIVE = FileState(
    id="file-a",
    tenant="acme",
    filename="in.jsonl",
    purpose="batch",
    bytes=10,
    created_at=100,
    expires_at=200,
    storage_key="acme/file-a",
    line_count=2,
)


def _history(*events: Event) -> list[Envelope]:
    return [envelope(event, version) for version, event in enumerate(events, start=1)]


def test_no_events_is_no_aggregate() -> None:
    assert fold(evolve_file, []) == (None, 0)


def test_an_upload_makes_an_active_file() -> None:
    assert fold(evolve_file, _history(UPLOAD)) == (ACTIVE, 1)


def test_a_delete_ends_the_file() -> None:
    state, version = fold(evolve_file, _history(UPLOAD, deleted()))
    assert version == 2
    assert state == msgspec.structs.replace(ACTIVE, lifecycle="deleted")


def test_an_expiry_ends_the_file() -> None:
    state, version = fold(evolve_file, _history(UPLOAD, expired()))
    assert version == 2
    assert state == msgspec.structs.replace(ACTIVE, lifecycle="expired")


@pytest.mark.parametrize("versions", [[2], [1, 3], [1, 1], [1, 2, 2], [0]])
def test_versions_out_of_order_are_corrupt(versions: list[int]) -> None:
    events: list[Event] = [UPLOAD, deleted(), expired()]
    history = [envelope(events[min(i, 2)], v) for i, v in enumerate(versions)]
    with pytest.raises(CorruptAggregate, match="version"):
        fold(evolve_file, history)


def test_an_event_of_another_aggregate_is_corrupt() -> None:
    history = [envelope(UPLOAD, 1), envelope(deleted(), 2, aggregate_id="file-b")]
    with pytest.raises(CorruptAggregate, match="file-b in the stream of file-a"):
        fold(evolve_file, history)


@pytest.mark.parametrize(
    "events",
    [
        pytest.param([UPLOAD, UPLOAD], id="upload twice"),
        pytest.param([UPLOAD, deleted(), deleted()], id="delete after delete"),
        pytest.param([UPLOAD, expired(), deleted()], id="delete after expiry"),
        pytest.param([UPLOAD, deleted(), expired()], id="expiry after delete"),
        pytest.param([UPLOAD, deleted(), UPLOAD], id="upload after delete"),
        pytest.param([deleted()], id="delete before upload"),
        pytest.param([expired()], id="expiry before upload"),
    ],
)
def test_illegal_transitions_are_refused(events: list[Event]) -> None:
    with pytest.raises(CorruptAggregate, match="cannot follow"):
        fold(evolve_file, _history(*events))


async def test_folding_what_the_log_holds(event_log: EventLog) -> None:
    file_id = new_file_id()
    await event_log.append(file_id, "acme", 0, [UPLOAD])
    await event_log.append(file_id, "acme", 1, [deleted()])
    records = await event_log.read_aggregate(file_id)

    state, version = fold(evolve_file, (record.envelope for record in records))

    assert version == await event_log.version(file_id) == 2
    assert state is not None
    assert (state.id, state.tenant, state.lifecycle) == (file_id, "acme", "deleted")
