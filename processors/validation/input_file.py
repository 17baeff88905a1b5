"""Validating a batch input file line by line, as OpenAI does, with bounded memory.

Each line must be a JSON object `{"custom_id", "method": "POST", "url": <the batch's
endpoint>, "body": {...}}` with a unique `custom_id` and no `"stream": true`. Errors carry
OpenAI's codes and 1-based line numbers; at most `max_errors` are reported.

Input files are hostile until checked (ADR 0025): a line longer than `max_line_bytes` is
refused while it streams in, JSON nested past `MAX_JSON_DEPTH` before any decoder recurses
into it, and every value that reaches a request header, a log line or a metric label
(`custom_id`, `body.model`) is refused with control characters or past its length limit.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import AsyncIterable
from typing import Any, NamedTuple

import msgspec

from batch_gateway.events.batch_events import BatchError
from batch_gateway.json_depth import MAX_JSON_DEPTH, exceeds_depth
from batch_gateway.results.lines import Line, LineSplitter, TooLong

# Endpoints whose requests need no `model`: OpenAI's API has a default for these (a moderation
# model, an image model, `sora-2`), which the server picks; such a request goes to the global
# gateway (ADR 0033).
MODEL_OPTIONAL_ENDPOINTS = frozenset(
    {"/v1/moderations", "/v1/images/generations", "/v1/images/edits", "/v1/videos"}
)
# A custom_id is echoed in result lines, logs and the `x-batch-request` header of each request;
# OpenAI's own ids are far shorter, and a few hundred characters is room for any naming scheme.
MAX_CUSTOM_ID_LENGTH = 512
MAX_MODEL_LENGTH = 256
# C0 controls, DEL and C1 controls: refused in a header by HTTP clients, or invisible in logs.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
# The UTF-8 check decodes a long line a slice at a time, never into one string of its size.
_UTF8_SLICE_BYTES = 1 << 20


class _Line(msgspec.Struct):
    custom_id: Any = None
    method: Any = None
    url: Any = None
    # Kept raw: only `model` and `stream` are looked at, the rest is never decoded here.
    body: msgspec.Raw = msgspec.field(default_factory=msgspec.Raw)


class _Body(msgspec.Struct):
    model: Any = None
    stream: Any = None


class _ObjectLine(msgspec.Struct):
    """A line whose body is an object (nearly every line), decoded in one pass; the others
    are decoded as `_Line`, then `_Body`, to say what is wrong."""

    custom_id: Any = None
    method: Any = None
    url: Any = None
    body: _Body | msgspec.UnsetType = msgspec.UNSET


_line_decoder = msgspec.json.Decoder(_Line)
_body_decoder = msgspec.json.Decoder(_Body)
_object_line_decoder = msgspec.json.Decoder(_ObjectLine)


class ValidationResult(msgspec.Struct, frozen=True):
    total: int
    models: list[str]
    errors: list[BatchError]
    # With a `slice_size`: where each slice's first request begins, in bytes from the file's
    # start, so that a processor reads its slice from there (ADR 0031).
    slice_offsets: list[int] = msgspec.field(default_factory=list)


class _Checker:
    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        self.custom_ids: set[str] = set()
        self.models: set[str] = set()
        self.errors: list[BatchError] = []
        self.total = 0
        self.slice_offsets: list[int] = []

    def fail(self, line: int, code: str, message: str, param: str | None = None) -> None:
        self.errors.append(BatchError(code=code, message=message, param=param, line=line))

    def check(self, number: int, raw: Line) -> None:
        # Checked on the whole line: the decoder skips what it does not keep (unknown fields,
        # the body's contents) without looking at its encoding, yet all of it goes downstream.
        # A NUL byte never occurs in UTF-8 JSON text but in every line of a UTF-16 or UTF-32
        # file, whose lines after the first (split at the 0x0A byte) would pass as ASCII.
        if b"\x00" in raw or (not raw.isascii() and not _is_utf8(raw)):
            self.fail(number, "invalid_file_encoding", "The file must be encoded as UTF-8.")
            return
        if exceeds_depth(raw):
            self.fail(
                number,
                "invalid_json_line",
                f"This line nests JSON more than {MAX_JSON_DEPTH} levels deep.",
            )
            return
        decoded = self._decode(number, raw)
        if decoded is None:
            return
        line, body = decoded
        missing = (
            "custom_id"
            if line.custom_id is None
            else "method"
            if line.method is None
            else "url"
            if line.url is None
            else None
        )
        if missing is not None:
            self.fail(number, "missing_required_parameter", f"Missing '{missing}'.", missing)
            return
        if body is None:
            self.fail(number, "missing_required_parameter", "Missing 'body'.", "body")
            return
        if not isinstance(line.custom_id, str) or not line.custom_id:
            self.fail(
                number, "invalid_custom_id", "custom_id must be a non-empty string.", "custom_id"
            )
        elif len(line.custom_id) > MAX_CUSTOM_ID_LENGTH:
            self.fail(
                number,
                "invalid_custom_id",
                f"custom_id must be at most {MAX_CUSTOM_ID_LENGTH} characters long.",
                "custom_id",
            )
        elif _has_control(line.custom_id):
            self.fail(
                number,
                "invalid_custom_id",
                "custom_id must not contain control characters (such as a newline or NUL).",
                "custom_id",
            )
        elif line.custom_id in self.custom_ids:
            self.fail(
                number,
                "duplicate_custom_id",
                f"custom_id {line.custom_id!r} is already used by an earlier line.",
                "custom_id",
            )
        else:
            self.custom_ids.add(line.custom_id)
        if line.method != "POST":
            self.fail(
                number, "invalid_method", "The method of every request must be POST.", "method"
            )
        if line.url != self.endpoint:
            self.fail(
                number,
                "invalid_url",
                f"The url must be the batch's endpoint, {self.endpoint}.",
                "url",
            )
        self._check_body(number, body)

    def _decode(
        self, number: int, raw: Line
    ) -> tuple[_Line | _ObjectLine, _Body | msgspec.Raw | None] | None:
        """The line and its body: decoded, None when missing, or raw when it is not a JSON
        object (reported with the body's other checks); None, with its error, when the line
        is not a JSON object."""
        try:
            line = _object_line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            pass
        else:
            return line, line.body if isinstance(line.body, _Body) else None
        try:
            raw_line = _line_decoder.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            self.fail(number, "invalid_json_line", "This line is not a valid JSON object.")
            return None
        if not raw_line.body:
            return raw_line, None
        try:
            return raw_line, _body_decoder.decode(raw_line.body)
        except msgspec.ValidationError:
            return raw_line, raw_line.body

    def _check_body(self, number: int, body: _Body | msgspec.Raw) -> None:
        if not isinstance(body, _Body):
            self.fail(number, "invalid_json_line", "body must be a JSON object.", "body")
            return
        if body.stream is True:
            self.fail(
                number,
                "streaming_unsupported",
                "Streaming is not supported in batches.",
                "body.stream",
            )
        # A NUL ("\u0000" in JSON) cannot be stored in PostgreSQL text, and a model name goes
        # into metric labels, logs and routing: control characters are refused like a NUL.
        if (
            isinstance(body.model, str)
            and body.model
            and len(body.model) <= MAX_MODEL_LENGTH
            and not _has_control(body.model)
        ):
            self.models.add(body.model)
        elif body.model is not None:
            self.fail(number, "invalid_value", "body.model must be a model name.", "body.model")
        elif self.endpoint not in MODEL_OPTIONAL_ENDPOINTS:
            self.fail(number, "missing_required_parameter", "Missing 'body.model'.", "body.model")


def _has_control(text: str) -> bool:
    # Printable text has no control characters; only the rest is searched.
    return not text.isprintable() and _CONTROL.search(text) is not None


def _is_utf8(raw: Line) -> bool:
    if len(raw) <= _UTF8_SLICE_BYTES:
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return True
    decoder = codecs.getincrementaldecoder("utf-8")()
    view = memoryview(raw)
    try:
        for start in range(0, len(view), _UTF8_SLICE_BYTES):
            decoder.decode(view[start : start + _UTF8_SLICE_BYTES])
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


async def validate_input(
    chunks: AsyncIterable[bytes],
    *,
    endpoint: str,
    max_requests: int,
    max_errors: int,
    max_line_bytes: int | None = None,
    allow_multiple_models: bool = True,
    slice_size: int | None = None,
) -> ValidationResult:
    checker = _Checker(endpoint)
    splitter = LineSplitter(max_line_bytes, track_offsets=slice_size is not None)
    limits = _Limits(max_requests, max_errors, max_line_bytes, slice_size)
    async for chunk in chunks:
        if not _check_lines(checker, splitter.feed(chunk), splitter.starts, limits):
            break
    else:
        _check_lines(checker, splitter.end(), splitter.starts, limits)
    if checker.total == 0 and not checker.errors:
        checker.fail(1, "empty_file", "The input file holds no requests.")
    models = sorted(checker.models)
    if not allow_multiple_models and len(models) > 1 and not checker.errors:
        checker.fail(
            1,
            "multiple_models",
            f"Every request of a batch must use the same model; found {', '.join(models)}.",
            "body.model",
        )
    offsets = checker.slice_offsets if len(checker.slice_offsets) > 1 else []
    return ValidationResult(checker.total, models, checker.errors[:max_errors], offsets)


class _Limits(NamedTuple):
    max_requests: int
    max_errors: int
    max_line_bytes: int | None
    slice_size: int | None


def _check_lines(
    checker: _Checker,
    lines: list[tuple[int, Line | TooLong]],
    starts: list[int],
    limits: _Limits,
) -> bool:
    """Check a chunk's lines (`starts`: where each begins, when slices are wanted); False
    once no more lines are to be checked."""
    max_requests, max_errors, max_line_bytes, slice_size = limits
    for index, (number, raw) in enumerate(lines):
        if not isinstance(raw, TooLong) and (not raw or raw.isspace()):
            continue  # blank lines carry no request
        if slice_size is not None and checker.total % slice_size == 0:
            checker.slice_offsets.append(starts[index])
        checker.total += 1
        if checker.total > max_requests:
            checker.fail(
                number,
                "too_many_requests",
                f"A batch may hold at most {max_requests} requests.",
            )
            return False
        if isinstance(raw, TooLong):
            checker.fail(
                number, "line_too_long", f"A line may be at most {max_line_bytes} bytes long."
            )
        else:
            checker.check(number, raw)
        if len(checker.errors) >= max_errors:
            return False
    return True
