"""Hostile input files through a stack of real processes: each ends within seconds as a batch
`failed` with line errors (or runs, when it is valid after all), and no process's memory grows
with the size of a line. Issue 10 measured a 190 MB line driving the processor to about 1 GB.

The line-by-line rules themselves (codes, params, line numbers) are checked for every case of
`tests/harness/invalid_inputs.py` in `tests/batches`; here the inputs are the large ones, and
what is measured is each process's peak resident memory (VmHWM).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from openai import OpenAI

from tests.chaos.stack import ChaosStack, chaos_stack
from tests.harness.batch_helpers import chat_file, chat_line, line_errors, validated

MAX_LINE_BYTES = 4 * 1024 * 1024
HUGE = 64 * 1024 * 1024
# No process may grow by as much as one huge line: that would mean it held the line whole.
MAX_PEAK_GROWTH = HUGE // 2
COMPONENTS = ("apiserver", "processor", "projector", "gc")


def _peak_rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


def _peaks(stack: ChaosStack) -> dict[str, int]:
    peaks = {}
    for name in COMPONENTS:
        process = stack.components[name].process
        assert process is not None
        peaks[name] = _peak_rss(process.pid)
    return peaks


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChaosStack]:
    work = tmp_path_factory.mktemp("hostile")
    with chaos_stack(work, environment={"BATCH_GATEWAY_MAX_LINE_BYTES": str(MAX_LINE_BYTES)}) as s:
        yield s


@pytest.fixture(scope="module")
def client(stack: ChaosStack) -> Iterator[OpenAI]:
    with OpenAI(
        base_url=f"{stack.api_url}/v1", api_key="hostile", max_retries=2, timeout=120
    ) as opened:
        yield opened


def _huge_line() -> bytes:
    """One request line of HUGE bytes, no newline: a request whose message is very long."""
    return json.dumps(chat_line("huge")).encode().replace(b'"hi"', b'"' + b"x" * HUGE + b'"')


def _hostile() -> Iterator[tuple[str, bytes, list[tuple[str, int | None, str | None]]]]:
    """Each input with the errors it must get; made one at a time, the huge ones are large."""
    yield "one huge line, no newline", _huge_line(), [("line_too_long", 1, None)]
    yield (
        "a huge line between valid ones",
        chat_file(2) + _huge_line() + b"\n" + json.dumps(chat_line("after")).encode() + b"\n",
        [("line_too_long", 3, None)],
    )
    yield from SMALL


SMALL: list[tuple[str, bytes, list[tuple[str, int | None, str | None]]]] = [
    (
        "nesting a hundred thousand levels deep",
        b'{"custom_id": "d", "body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}\n",
        [("invalid_json_line", 1, None)],
    ),
    (
        "a custom_id that would split a header",
        json.dumps(chat_line("a\r\nx-injected: 1")).encode() + b"\n",
        [("invalid_custom_id", 1, "custom_id")],
    ),
    ("0 bytes", b"", [("empty_file", 1, None)]),
    ("blank lines only", b"\n \r\n\t\n", [("empty_file", 1, None)]),
    ("invalid utf-8", b"\xff\xfe" + chat_file(1), [("invalid_file_encoding", 1, None)]),
]


@pytest.mark.timeout(300)
def test_hostile_files_fail_with_line_errors_and_no_process_holds_a_line_whole(
    stack: ChaosStack, client: OpenAI
) -> None:
    before = _peaks(stack)
    for name, content, expected in _hostile():
        batch = validated(client, content)
        assert line_errors(batch) == expected, name
    # A BOM and CRLF line ends are fine: that file runs.
    batch = validated(client, b"\xef\xbb\xbf" + chat_file(3).replace(b"\n", b"\r\n"))
    assert batch.status == "in_progress", batch.errors

    growth = {name: peak - before[name] for name, peak in _peaks(stack).items()}
    assert all(grown < MAX_PEAK_GROWTH for grown in growth.values()), growth
