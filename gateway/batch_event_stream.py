"""`GET /v1/batches/{batch_id}/events`: one batch's events as Server-Sent Events.

Each message is `id:` the stream entry id, `event:` the event type, `data:` the event's public
JSON document exactly as the log stores it (docs/events.md). The stream replays the batch's
events from the start, or after `Last-Event-ID` (or `?after=`), follows live ones, and ends
after the terminal event; while idle it sends `: keep-alive` comments.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator
from typing import Annotated

from litestar import Controller, get
from litestar.params import FromPath, HeaderParameter, QueryParameter
from litestar.response import Stream

from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCompleted,
    BatchCreated,
    BatchExpired,
    BatchFailed,
)
from batch_gateway.events.envelope import StreamId
from batch_gateway.events.raw_log import RawEntry
from batch_gateway.gateway.batch_commands import no_such_batch
from batch_gateway.gateway.dependencies import Services, Tenant
from batch_gateway.gateway.event_fanout import EventFanout, EventReads
from batch_gateway.gateway.openapi import error_responses
from batch_gateway.gateway.settings import EventStreamSettings
from batch_gateway.ids import is_batch_id

TERMINAL_EVENT_TYPES = frozenset(
    str(cls.__struct_config__.tag)
    for cls in (BatchCompleted, BatchFailed, BatchCancelled, BatchExpired)
)
_CREATED = str(BatchCreated.__struct_config__.tag)
KEEP_ALIVE = b": keep-alive\n\n"
_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# A Redis stream id, `MS` or `MS-SEQ`. ASCII digits, not `\d` nor `str.isdigit`: both take
# digits of every script, which `int` then accepts. 19 digits stay within Redis's 64 bits.
EVENT_ID = r"^([0-9]{1,19})(?:-([0-9]{1,19}))?$"
_EVENT_ID = re.compile(EVENT_ID)


def sse_message(entry: RawEntry) -> bytes:
    """The entry as one SSE message (the document is one line of compact JSON)."""
    lines = [b"id: " + str(entry.stream_id).encode(), b"event: " + entry.type.encode()]
    lines.extend(b"data: " + line for line in entry.document.splitlines())
    return b"\n".join(lines) + b"\n\n"


class BatchEventsController(Controller):
    path = "/v1/batches"

    @get(
        "/{batch_id:str}/events",
        summary="Follow a batch's events (Server-Sent Events)",
        media_type="text/event-stream",
        responses=error_responses(404),
    )
    async def events(
        self,
        services: Services,
        tenant: Tenant,
        batch_id: FromPath[str],
        after: Annotated[str | None, QueryParameter(pattern=EVENT_ID)] = None,
        last_event_id: Annotated[
            str | None, HeaderParameter(name="Last-Event-ID", pattern=EVENT_ID)
        ] = None,
    ) -> Stream:
        # A reconnecting EventSource keeps the URL it started with: its header wins.
        start = _stream_id(last_event_id or after)
        reads = services.event_reads
        first = await reads.first(batch_id) if is_batch_id(batch_id) else None
        if first is None or first.type != _CREATED or first.head()[1] != tenant:
            raise no_such_batch(batch_id)
        services.event_fanout.check_room()
        stream = follow_batch(
            services.event_fanout, reads, services.settings.event_stream, batch_id, start
        )
        return Stream(stream, media_type="text/event-stream", headers=_HEADERS)


async def follow_batch(
    fanout: EventFanout,
    reads: EventReads,
    settings: EventStreamSettings,
    batch_id: str,
    after: StreamId | None,
) -> AsyncIterator[bytes]:
    """The SSE body. When the client goes away, the server cancels the task iterating this
    generator at its current `await`; the `with` block then unsubscribes, and nothing else
    (no task, no connection) was ever held for this stream."""
    loop = asyncio.get_running_loop()
    limit = settings.max_stream_seconds
    deadline = loop.time() + limit if limit > 0 else math.inf
    if after is not None:
        last_entry = await reads.last(batch_id)
        if last_entry and last_entry.stream_id <= after and last_entry.type in TERMINAL_EVENT_TYPES:
            return  # the client has seen the end already
    with fanout.subscribe(batch_id) as subscription:
        sent = after
        replaying = True
        while loop.time() < deadline:
            if replaying:
                entries = await reads.page(batch_id, sent)
                # Until a page comes back empty: pages from the archive may be short.
                replaying = bool(entries)
            else:
                timeout = min(settings.keep_alive_seconds, deadline - loop.time())
                arrived = await subscription.wait(timeout)
                if subscription.closed:
                    return
                if not arrived:
                    if loop.time() < deadline:
                        yield KEEP_ALIVE
                    continue
                entries, overflowed = subscription.take()
                if overflowed:
                    replaying = True
                    continue
            for entry in entries:
                if sent is not None and entry.stream_id <= sent:
                    continue  # delivered live while the replay read it too
                yield sse_message(entry)
                sent = entry.stream_id
                if entry.type in TERMINAL_EVENT_TYPES:
                    return


def _stream_id(value: str | None) -> StreamId | None:
    """The id to resume after; its grammar was checked with the parameters (a 400 otherwise:
    a stream cut short instead would make an EventSource reconnect for ever)."""
    # `match`, as the parameter check does: its `$` takes a trailing newline too.
    match = _EVENT_ID.match(value) if value else None
    if match is None:
        return None
    return StreamId(int(match.group(1)), int(match.group(2) or 0))
