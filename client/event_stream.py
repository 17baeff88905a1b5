"""Following `GET /v1/batches/{id}/events` from a client, resuming after a dropped connection.

The server ends a stream after the batch's terminal event. Any other end (a proxy's timeout,
a restarted API server, the server's `max_stream_seconds`, a network error) is not the end of
the batch: the client reconnects with `Last-Event-ID` set to the last id it received, and the
server goes on from the entry after it, so no event is repeated or missed.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import httpx

TERMINAL_EVENT_TYPES = frozenset(
    {"batch.completed", "batch.failed", "batch.cancelled", "batch.expired"}
)
# Reconnections in a row that bring no event before giving up; waits grow up to the last one.
MAX_FAILURES = 8
_BACKOFF_SECONDS = (0.2, 0.5, 1.0, 2.0, 5.0)
# The server sends a keep-alive comment every 15 s by default: silence this long is a dead link.
READ_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class SseMessage:
    id: str | None
    event: str
    data: str


class StreamRefused(Exception):
    """The server answered with an error that retrying will not fix (404, 401, 400...)."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(f"{status_code}: {message}")
        self.status_code = status_code
        self.message = message


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def sse_lines(chunks: Iterable[str]) -> Iterator[str]:
    """Lines of an SSE body as SSE splits them: at CR, LF or CRLF only (`str.splitlines`, and
    so httpx's `iter_lines`, would also split at U+2028 or NEL, which JSON strings may hold)."""
    buffer = ""
    for chunk in chunks:
        buffer += chunk
        while (match := _LINE_BREAK.search(buffer)) is not None:
            if match.group() == "\r" and match.end() == len(buffer):
                break  # maybe the first half of a CRLF split across chunks
            yield buffer[: match.start()]
            buffer = buffer[match.end() :]
    if buffer:
        yield buffer.removesuffix("\r")


def parse_sse(lines: Iterable[str]) -> Iterator[SseMessage]:
    """The messages of an SSE body given line by line (comments and `retry:` are skipped)."""
    event_id: str | None = None
    event = ""
    data: list[str] = []
    for line in lines:
        if not line:
            if data:
                yield SseMessage(event_id, event or "message", "\n".join(data))
            event_id, event, data = None, "", []
            continue
        if line.startswith(":"):
            continue
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "id":
            event_id = value
        elif name == "event":
            event = value
        elif name == "data":
            data.append(value)


class EventStreamClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        headers: Mapping[str, str] | None = None,
        on_resume: Callable[[str], None] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._base_url = base_url.rstrip("/")
        # The caller's headers (a tenant header, say) win over ours, whatever their case.
        self._headers = httpx.Headers(
            {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream"}
        )
        self._headers.update(headers or {})
        self._on_resume = on_resume
        self._sleep = sleep

    def follow(self, batch_id: str) -> Iterator[SseMessage]:
        """Every event of the batch, from the first to the terminal one, across reconnections."""
        url = f"{self._base_url}/batches/{batch_id}/events"
        timeout = httpx.Timeout(10.0, read=READ_TIMEOUT_SECONDS)
        last_id: str | None = None
        # Failed attempts in a row, and streams in a row that ended without an event.
        failures = quiet = 0
        with httpx.Client(timeout=timeout) as http:
            while True:
                headers = self._headers.copy()
                if last_id is not None:
                    headers["Last-Event-ID"] = last_id
                try:
                    with http.stream("GET", url, headers=headers) as response:
                        _check(response)
                        for message in parse_sse(sse_lines(response.iter_text())):
                            last_id = message.id or last_id
                            failures = quiet = 0
                            yield message
                            if message.event in TERMINAL_EVENT_TYPES:
                                return
                    why = "stream ended"
                    if quiet:  # ended again with nothing new: do not reconnect in a tight loop
                        self._sleep(_backoff(quiet))
                    quiet += 1
                except (httpx.TransportError, _Retryable) as error:
                    failures += 1
                    if failures > MAX_FAILURES:
                        raise StreamUnavailable(f"{type(error).__name__}: {error}") from error
                    self._sleep(_backoff(failures))
                    why = f"{type(error).__name__}: {error}"
                if self._on_resume is not None:
                    after = f"after {last_id}" if last_id else "from the start"
                    self._on_resume(f"{why}; resuming {after}")


def _backoff(attempt: int) -> float:
    return _BACKOFF_SECONDS[min(attempt, len(_BACKOFF_SECONDS)) - 1]


class StreamUnavailable(Exception):
    """The server could not be reached, or kept failing, through every reconnection."""


class _Retryable(Exception):
    """A 429 or 5xx: the server (or one behind the same address) may answer next time."""


def _check(response: httpx.Response) -> None:
    if response.status_code == 200:
        return
    response.read()
    if response.status_code == 429 or response.status_code >= 500:
        raise _Retryable(response.status_code)
    raise StreamRefused(response.status_code, _error_message(response))


def _error_message(response: httpx.Response) -> str:
    try:
        return str(json.loads(response.content)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text or response.reason_phrase
