"""examples/follow_completions.py, run as its documentation says, against a live stack: a direct
subscriber with its own consumer group that reports every batch that ends."""

from __future__ import annotations

import contextlib
import json
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import IO, Any

from tests.harness.batch_helpers import chat_file, wait_until_status
from tests.subscribers.cli_runs import EXAMPLES, api_client
from tests.subscribers.executing_stack import ExecutingStack

LINE_TIMEOUT_SECONDS = 20.0


@contextlib.contextmanager
def follower(stack: ExecutingStack, *options: str) -> Iterator[queue.Queue[str]]:
    """The example running on the stack's Redis and prefix; yields its stdout, line by line,
    once it follows the stream (so that no completion can come before its group exists)."""
    command = [
        sys.executable,
        str(EXAMPLES / "follow_completions.py"),
        "--redis-url", stack.stack.settings.redis_url,
        "--prefix", stack.stack.settings.key_prefix,
        *options,
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, bufsize=1
    )
    assert process.stdout is not None
    assert process.stderr is not None
    lines, notes = _lines_of(process.stdout), _lines_of(process.stderr)
    try:
        assert notes.get(timeout=LINE_TIMEOUT_SECONDS).startswith("following {")
        yield lines
    finally:
        process.terminate()
        process.wait(timeout=10)


def _lines_of(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stream:
            for line in stream:
                lines.put(line.rstrip("\n"))

    threading.Thread(target=pump, daemon=True).start()
    return lines


def run_batch(stack: ExecutingStack, count: int = 3) -> str:
    with api_client(stack) as client:
        file_id = client.files.create(file=("in.jsonl", chat_file(count)), purpose="batch").id
        batch = client.batches.create(
            input_file_id=file_id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        return wait_until_status(client, batch.id, {"completed"}, timeout=30).id


def test_prints_each_completed_batch(executing_stack: ExecutingStack) -> None:
    with follower(executing_stack, "--group", "printer") as lines:
        batch_id = run_batch(executing_stack)
        line = lines.get(timeout=LINE_TIMEOUT_SECONDS)

    assert line.startswith(
        f"batch.completed {batch_id} status=completed total=3 completed=3 failed=0 output_file_id="
    )
    assert line.endswith(" error_file_id=-")


def receiver(
    received: queue.Queue[dict[str, Any]], refusals: list[int]
) -> type[BaseHTTPRequestHandler]:
    """A webhook receiver that refuses the first delivery and accepts the rest: the example
    must retry, not drop it."""

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            if not refusals:
                refusals.append(500)
                self.send_response(500)
            else:
                received.put(json.loads(body))
                self.send_response(204)
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Receiver


def test_posts_each_ending_to_a_webhook_until_it_is_accepted(
    executing_stack: ExecutingStack,
) -> None:
    received: queue.Queue[dict[str, Any]] = queue.Queue()
    refusals: list[int] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), receiver(received, refusals))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    try:
        with follower(executing_stack, "--group", "hooks", "--webhook", url) as lines:
            batch_id = run_batch(executing_stack)
            delivered = received.get(timeout=LINE_TIMEOUT_SECONDS)
            assert lines.empty()
    finally:
        server.shutdown()
        server.server_close()

    assert delivered["type"] == "batch.completed"
    assert delivered["batch_id"] == batch_id
    assert delivered["status"] == "completed"
    assert delivered["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert delivered["event_id"].startswith("evt_")
    assert refusals == [500]
