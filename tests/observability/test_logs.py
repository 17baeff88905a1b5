"""JSON log lines name the component, the request and the batch, on every line: lines of
the API carry the request's `x-request-id`, and lines about a batch carry its id, in the API,
the validator and the job alike; the processor's lines about a batch name the request id of
its create call, which the events carry."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from batch_gateway.logs import JsonFormatter
from batch_gateway.processors.settings import GatewaySettings
from tests.execution.conftest import ClientOf, StartExecuting, StartSimulator
from tests.execution.results import TERMINAL, requests_file
from tests.harness.batch_helpers import CHAT, upload, wait_until_status
from tests.harness.live_stack import StartStack
from tests.harness.sdk import sdk_client

KEYS = {"time", "level", "component", "request_id", "batch_id", "logger", "message"}


class CapturedLines:
    def __init__(self, stream: io.StringIO) -> None:
        self._stream = stream

    def all(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self._stream.getvalue().splitlines()]

    def about(self, text: str) -> list[dict[str, Any]]:
        return [line for line in self.all() if text in line["message"]]


@pytest.fixture
def captured() -> Iterator[CapturedLines]:
    """Every log line of the process at INFO, formatted as a component would write it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test-component"))
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    try:
        yield CapturedLines(stream)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


def test_lines_of_a_request_and_a_job_name_the_request_and_the_batch(
    captured: CapturedLines,
    start_simulator: StartSimulator,
    start_executing: StartExecuting,
    client_of: ClientOf,
) -> None:
    sim = start_simulator()
    client = client_of(start_executing(global_inference_gateway=GatewaySettings(url=sim.url)))
    file_id = upload(client, requests_file(3))

    raw = client.batches.with_raw_response.create(
        input_file_id=file_id, endpoint=CHAT, completion_window="24h"
    )
    batch = raw.parse()
    done = wait_until_status(client, batch.id, TERMINAL, 30.0)

    assert done.status == "completed"
    lines = captured.all()
    assert lines
    for line in lines:
        assert set(line) >= KEYS, line
        assert line["component"] == "test-component"
    [created] = captured.about(f"batch {batch.id} created")
    assert created["request_id"] == raw.headers["x-request-id"]
    assert created["batch_id"] == batch.id
    processor_lines = [
        line
        for line in captured.about(batch.id)
        if line["logger"].startswith("batch_gateway.processors")
    ]
    messages = " | ".join(line["message"] for line in processor_lines)
    assert "validated" in messages
    assert "ended completed" in messages
    for line in processor_lines:
        assert line["batch_id"] == batch.id, line
        assert line["request_id"] == raw.headers["x-request-id"], line


def test_a_request_on_a_batch_names_the_batch_of_its_path(
    captured: CapturedLines, start_stack: StartStack
) -> None:
    stack = start_stack(with_processor=False)  # nothing validates: the batch stays cancellable
    with sdk_client(stack, default_headers={stack.settings.tenant_header: "t-logs"}) as client:
        file_id = upload(client, requests_file(1))
        batch = client.batches.create(input_file_id=file_id, endpoint=CHAT, completion_window="24h")

        raw = client.batches.with_raw_response.cancel(batch.id)

    [cancel] = captured.about(f"batch {batch.id}: cancel requested")
    assert cancel["request_id"] == raw.headers["x-request-id"]
    assert cancel["batch_id"] == batch.id
    unrelated = [line for line in captured.all() if line["request_id"] is None]
    assert all(line["batch_id"] in (None, batch.id) for line in unrelated)
