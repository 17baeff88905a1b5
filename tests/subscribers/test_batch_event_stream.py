"""`GET /v1/batches/{id}/events` over raw HTTP: replay, resume, live following, the end of the
stream, keep-alives and tenancy."""

from __future__ import annotations

import queue
import threading
import time

import httpx
from openai import OpenAI

from tests.harness.batch_helpers import validated, wait_until_status
from tests.harness.live_stack import LiveStack
from tests.harness.openai_errors import error_of
from tests.harness.sse import Frame, aggregate_entries, frames, read_stream

CANCELLED_TYPES = ["batch.created", "batch.validated", "batch.cancel_requested", "batch.cancelled"]


def cancelled_batch(client: OpenAI) -> str:
    """A batch that ran its whole course: created, validated, cancelled (no processor runs it)."""
    batch = validated(client)
    client.batches.cancel(batch.id)
    wait_until_status(client, batch.id, {"cancelled"})
    return batch.id


def test_replays_every_stored_event_then_ends(
    client: OpenAI, http: httpx.Client, module_stack: LiveStack
) -> None:
    batch_id = cancelled_batch(client)

    body = read_stream(http, batch_id)

    stored = aggregate_entries(module_stack, batch_id)
    assert [entry.type for entry in stored] == CANCELLED_TYPES
    # Each message is the entry itself: its id, its type, its document byte for byte.
    assert body.frames == [Frame(entry.id, entry.type, entry.document) for entry in stored]


def test_resumes_after_last_event_id_or_after(
    client: OpenAI, http: httpx.Client, module_stack: LiveStack
) -> None:
    batch_id = cancelled_batch(client)
    stored = aggregate_entries(module_stack, batch_id)
    expected = [Frame(entry.id, entry.type, entry.document) for entry in stored]

    by_header = read_stream(http, batch_id, headers={"Last-Event-ID": stored[1].id})
    by_query = read_stream(http, batch_id, params={"after": stored[0].id})
    # An EventSource that reconnects keeps its first URL: the header it adds wins.
    both = read_stream(
        http, batch_id, headers={"Last-Event-ID": stored[2].id}, params={"after": stored[0].id}
    )

    assert by_header.frames == expected[2:]
    assert by_query.frames == expected[1:]
    assert both.frames == expected[3:]


def test_a_client_that_saw_the_end_gets_an_empty_stream(
    client: OpenAI, http: httpx.Client, module_stack: LiveStack
) -> None:
    batch_id = cancelled_batch(client)
    last = aggregate_entries(module_stack, batch_id)[-1]

    started = time.monotonic()
    body = read_stream(http, batch_id, headers={"Last-Event-ID": last.id})

    assert body.frames == []
    assert body.comments == []
    assert time.monotonic() - started < 2.0


def test_follows_live_events_with_keep_alives_until_the_end(
    client: OpenAI, http: httpx.Client, module_stack: LiveStack
) -> None:
    batch = validated(client)
    received: queue.Queue[Frame | str | None] = queue.Queue()

    def subscribe() -> None:
        with http.stream("GET", f"/v1/batches/{batch.id}/events", timeout=10) as response:
            for frame in frames(response.iter_lines(), received.put):
                received.put(frame)
        received.put(None)  # the server ended the stream

    reader = threading.Thread(target=subscribe, daemon=True)
    reader.start()
    replayed = [received.get(timeout=5), received.get(timeout=5)]
    # Nothing happens to the batch for a while: the stream says it is alive.
    assert received.get(timeout=5) == "keep-alive"
    client.batches.cancel(batch.id)
    rest: list[Frame | str | None] = []
    while not rest or rest[-1] is not None:
        rest.append(received.get(timeout=5))
    reader.join(timeout=5)

    seen = [item for item in [*replayed, *rest] if isinstance(item, Frame)]
    stored = aggregate_entries(module_stack, batch.id)
    assert replayed == [Frame(e.id, e.type, e.document) for e in stored[:2]]
    assert seen == [Frame(e.id, e.type, e.document) for e in stored]
    assert [frame.event for frame in seen] == CANCELLED_TYPES


def test_another_tenants_batch_is_not_found(
    client: OpenAI, module_stack: LiveStack, http: httpx.Client
) -> None:
    batch = validated(client)
    own_file = client.files.list().data[0].id
    headers = {module_stack.settings.tenant_header: "someone-else"}
    with httpx.Client(base_url=module_stack.base_url, headers=headers) as other:
        error = error_of(other.get(f"/v1/batches/{batch.id}/events"), 404)
    assert error["message"] == f"No such Batch object: {batch.id}"
    for unknown in ("batch_" + "0" * 32, "nonsense", own_file):
        error_of(http.get(f"/v1/batches/{unknown}/events"), 404)


def test_a_malformed_resume_id_is_refused(client: OpenAI, http: httpx.Client) -> None:
    batch = validated(client)

    by_header = http.get(f"/v1/batches/{batch.id}/events", headers={"Last-Event-ID": "x-1"})
    by_query = http.get(f"/v1/batches/{batch.id}/events", params={"after": "12-"})

    assert error_of(by_header, 400)["param"] == "Last-Event-ID"
    assert error_of(by_query, 400)["param"] == "after"
