"""Batch input files that fail validation, each with the errors (code, line, param) it must
get: shared by the unit tests of `validate_input` and the tests on a live stack."""

from __future__ import annotations

import json
from typing import Any

from tests.harness.batch_helpers import chat_line

Expected = list[tuple[str, int | None, str | None]]


def raw_lines(*lines: dict[str, Any] | bytes) -> bytes:
    """JSONL of `lines`; bytes go in as they are (a broken line, say)."""
    return b"".join(
        (line if isinstance(line, bytes) else json.dumps(line).encode()) + b"\n" for line in lines
    )


def without(field: str) -> dict[str, Any]:
    """A valid chat line without `field` (`body.model` reaches into the body)."""
    line = chat_line("x")
    if field.startswith("body."):
        del line["body"][field.removeprefix("body.")]
    else:
        del line[field]
    return line


def _missing(line: int, field: str) -> Expected:
    return [("missing_required_parameter", line, field)]


def _nested(depth: int) -> Any:
    """A JSON value `depth` arrays deep; as `messages` in a line, two levels more (line, body)."""
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


def _streaming(custom_id: str) -> dict[str, Any]:
    line = chat_line(custom_id)
    return line | {"body": line["body"] | {"stream": True}}


INVALID_INPUTS: list[tuple[str, bytes, Expected]] = [
    (
        "invalid_json_line",
        raw_lines(chat_line("a"), b"{not json", chat_line("b"), b'["a list"]'),
        [("invalid_json_line", 2, None), ("invalid_json_line", 4, None)],
    ),
    *[
        (f"missing {field}", raw_lines(chat_line("a"), without(field)), _missing(2, field))
        for field in ("custom_id", "method", "url", "body", "body.model")
    ],
    (
        "invalid_url",
        raw_lines(chat_line("a"), chat_line("b", url="/v1/completions")),
        [("invalid_url", 2, "url")],
    ),
    ("invalid_method", raw_lines(chat_line("a", method="GET")), [("invalid_method", 1, "method")]),
    (
        "duplicate_custom_id",
        raw_lines(chat_line("a"), chat_line("b"), chat_line("a")),
        [("duplicate_custom_id", 3, "custom_id")],
    ),
    (
        "streaming_unsupported",
        raw_lines(chat_line("a"), _streaming("b")),
        [("streaming_unsupported", 2, "body.stream")],
    ),
    ("empty_file", b"", [("empty_file", 1, None)]),
    ("only blank lines", b"\n  \n\r\n", [("empty_file", 1, None)]),
    (
        "blank lines counted",
        b"\n" + raw_lines(chat_line("a")) + b"\r\n   \n" + raw_lines(chat_line("b", method="PUT")),
        [("invalid_method", 5, "method")],
    ),
    (
        "utf-16",
        raw_lines(chat_line("a"), chat_line("b")).decode().encode("utf-16"),
        [("invalid_file_encoding", line, None) for line in (1, 2, 3)],
    ),
    # Hostile input (issue 10): what would reach a request header, a log line, a metric label
    # or a decoder's recursion is refused here, line by line.
    (
        "invalid utf-8",
        raw_lines(chat_line("a"), json.dumps(chat_line("b")).encode()[:-3] + b'\xff"}}'),
        [("invalid_file_encoding", 2, None)],
    ),
    (
        "control characters in custom_id",
        raw_lines(*(chat_line(f"a{c}b") for c in ("\n", "\r", "\x00", "\x7f", "\x85", "\t"))),
        [("invalid_custom_id", line, "custom_id") for line in range(1, 7)],
    ),
    (
        "custom_id too long",
        raw_lines(chat_line("x" * 512), chat_line("y" * 513)),
        [("invalid_custom_id", 2, "custom_id")],
    ),
    (
        "control characters or excess length in body.model",
        raw_lines(chat_line("a", model="m\n1"), chat_line("b", model="m" * 257)),
        [("invalid_value", 1, "body.model"), ("invalid_value", 2, "body.model")],
    ),
    (
        "json nested deeper than 128 levels",
        raw_lines(
            chat_line("a", body={"model": "m1", "messages": _nested(126)}),
            chat_line("b", body={"model": "m1", "messages": _nested(127)}),
            b'{"custom_id": "c", "body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        ),
        [("invalid_json_line", 2, None), ("invalid_json_line", 3, None)],
    ),
]
