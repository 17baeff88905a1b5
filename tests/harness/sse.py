"""Reading Server-Sent Events over raw HTTP, frame by frame, comments included, and the
entries a batch's stream holds in Redis to compare them with."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import cast

import httpx
import redis

from batch_gateway.events.keys import StreamKeys
from tests.harness.live_stack import LiveStack


@dataclass(frozen=True)
class Frame:
    id: str | None
    event: str | None
    data: str


@dataclass
class SseBody:
    frames: list[Frame] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    raw: bytes = b""


@dataclass(frozen=True)
class Entry:
    id: str
    type: str
    document: str


def frames(
    lines: Iterator[str], on_comment: Callable[[str], None] | None = None
) -> Iterator[Frame]:
    """The frames of an SSE body; each comment line goes to `on_comment` as it is read."""
    values: dict[str, list[str]] = {}
    for line in lines:
        if not line:
            if values:
                ids, events = values.get("id", []), values.get("event", [])
                yield Frame(
                    ids[0] if ids else None,
                    events[0] if events else None,
                    "\n".join(values.get("data", [])),
                )
            values = {}
        elif line.startswith(":"):
            if on_comment is not None:
                on_comment(line[1:].strip())
        else:
            name, _, value = line.partition(":")
            values.setdefault(name, []).append(value.removeprefix(" "))


def read_stream(
    http: httpx.Client,
    batch_id: str,
    *,
    headers: Mapping[str, str] | None = None,
    params: Mapping[str, str] | None = None,
) -> SseBody:
    """The whole body of a stream that ends by itself (the batch has ended)."""
    body = SseBody()
    with http.stream(
        "GET", f"/v1/batches/{batch_id}/events", headers=headers, params=params, timeout=10
    ) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        chunks = list(response.iter_bytes())
    body.raw = b"".join(chunks)
    lines = re.split(r"\r\n|\r|\n", body.raw.decode())
    body.frames = list(frames(iter(lines), body.comments.append))
    return body


def aggregate_entries(stack: LiveStack, batch_id: str) -> list[Entry]:
    """What the batch's own stream holds, as stored."""
    key = StreamKeys(stack.settings.key_prefix).aggregate_stream(batch_id)
    client = redis.Redis.from_url(stack.settings.redis_url)
    try:
        return [
            Entry(raw_id.decode(), fields[b"type"].decode(), fields[b"event"].decode())
            for raw_id, fields in stream_entries(client, key)
        ]
    finally:
        client.close()


def stream_entries(client: redis.Redis, key: str) -> list[tuple[bytes, dict[bytes, bytes]]]:
    return cast(list[tuple[bytes, dict[bytes, bytes]]], client.xrange(key))


def subscriber_gauge(http: httpx.Client) -> float:
    """The API server's `batch_gateway_api_event_subscribers` (process-wide)."""
    for line in http.get("/metrics").text.splitlines():
        if line.startswith("batch_gateway_api_event_subscribers "):
            return float(line.split()[1])
    raise AssertionError("no batch_gateway_api_event_subscribers metric")
