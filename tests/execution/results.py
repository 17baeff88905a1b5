"""Running a batch to its end through the SDK, and reading its output and error files."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from openai import OpenAI
from openai.types import Batch

from tests.harness.batch_helpers import CHAT, jsonl, upload, wait_until_status

TERMINAL = ("completed", "failed", "expired", "cancelled")
RUN_TIMEOUT_SECONDS = 30.0
_POLL_SECONDS = 0.02


def requests_file(count: int, model: str = "sim-model", endpoint: str = CHAT) -> bytes:
    """`count` requests `r0`, `r1`, ... of `endpoint` for `model`."""
    return jsonl(request(f"r{i}", model, endpoint) for i in range(count))


def request(custom_id: str, model: str = "sim-model", endpoint: str = CHAT) -> dict[str, Any]:
    body: dict[str, Any]
    if endpoint == CHAT:
        content = f"please answer request {custom_id}"
        body = {"model": model, "messages": [{"role": "user", "content": content}]}
    else:
        body = {"model": model, "input": f"embed the words of {custom_id}"}
    return {"custom_id": custom_id, "method": "POST", "url": endpoint, "body": body}


def start_batch(client: OpenAI, content: bytes, endpoint: str = CHAT, **params: Any) -> Batch:
    file_id = upload(client, content)
    return client.batches.create(
        input_file_id=file_id,
        endpoint=endpoint,  # type: ignore[arg-type]
        completion_window="24h",
        **params,
    )


def run_batch(
    client: OpenAI, content: bytes, endpoint: str = CHAT, timeout: float = RUN_TIMEOUT_SECONDS
) -> Batch:
    """Create a batch of `content` and wait for its end."""
    batch = start_batch(client, content, endpoint)
    return wait_until_status(client, batch.id, TERMINAL, timeout)


def wait_for(condition: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what}")
        time.sleep(_POLL_SECONDS)


def file_lines(client: OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    """The decoded lines of a result file (none for a null id)."""
    if file_id is None:
        return []
    content = client.files.content(file_id).content
    assert content.endswith(b"\n"), content[-100:]
    return [json.loads(line) for line in content.splitlines()]


@dataclass(frozen=True)
class Results:
    output: list[dict[str, Any]]
    errors: list[dict[str, Any]]

    @property
    def error_codes(self) -> Counter[str]:
        return Counter(line["error"]["code"] for line in self.errors if line["error"])

    def codes_by_id(self) -> dict[str, str]:
        return {line["custom_id"]: line["error"]["code"] for line in self.errors if line["error"]}

    def assert_each_once(self, custom_ids: Collection[str]) -> None:
        """Every custom_id in exactly one line of one of the files, and nothing else."""
        seen = Counter(line["custom_id"] for line in [*self.output, *self.errors])
        assert set(seen) == set(custom_ids), set(seen) ^ set(custom_ids)
        assert max(seen.values(), default=1) == 1, {k: n for k, n in seen.items() if n > 1}

    def assert_counts_match(self, batch: Batch) -> None:
        counts = batch.request_counts
        assert counts is not None
        assert (counts.completed, counts.failed) == (len(self.output), len(self.errors))
        assert counts.total == len(self.output) + len(self.errors)


def results_of(client: OpenAI, batch: Batch) -> Results:
    return Results(
        file_lines(client, batch.output_file_id), file_lines(client, batch.error_file_id)
    )


def ids(count: int) -> set[str]:
    return {f"r{i}" for i in range(count)}
