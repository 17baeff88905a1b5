"""Structured JSON logs: one object per line, with the component, the request and the batch.

Every line has the keys `component`, `request_id` and `batch_id`, `null` when a line belongs
to no request or batch, so that a log query can filter on them without testing for presence.
The ids come from context variables: the API sets them per request (`request_id` always,
`batch_id` on `/v1/batches/{batch_id}...` and once a create has chosen the new id); the
processor and the gc set `batch_id` while they work on a batch (`batch_context`), and the
processor sets `request_id` to the create call's, which the events carry (`request_context`).
Context variables follow asyncio tasks, so concurrent jobs of one processor never mix their ids.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import sys
import time
from collections.abc import Iterator

import msgspec

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)
batch_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("batch_id", default=None)

_encoder = msgspec.json.Encoder()


@contextlib.contextmanager
def _bound(variable: contextvars.ContextVar[str | None], value: str | None) -> Iterator[None]:
    token = variable.set(value)
    try:
        yield
    finally:
        variable.reset(token)


def batch_context(batch_id: str | None) -> contextlib.AbstractContextManager[None]:
    """Name `batch_id` on every log line written inside the block (in this task and in the
    tasks it starts)."""
    return _bound(batch_id_var, batch_id)


def request_context(request_id: str | None) -> contextlib.AbstractContextManager[None]:
    """Name `request_id` on every log line written inside the block: in the processor, the
    API call a batch's work descends from (its create, recorded in the events)."""
    return _bound(request_id_var, request_id)


class JsonFormatter(logging.Formatter):
    def __init__(self, component: str) -> None:
        super().__init__()
        self._component = component

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "component": self._component,
            "request_id": request_id_var.get(),
            "batch_id": batch_id_var.get(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encoder.encode(line).decode()


def configure_logging(component: str, level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(component))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # uvicorn's access log repeats what our metrics and request ids already say.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
