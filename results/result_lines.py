"""The lines of OpenAI's batch output and error files, and the usage they add up to.

    {"id": "batch_req_...", "custom_id": "...",
     "response": {"status_code": 200, "request_id": "...", "body": {...}}, "error": null}

Successes go to the output file; HTTP failures (with their response) and requests that were
never answered (`batch_expired`, `batch_cancelled`, `request_timeout`, `model_not_found`, ...,
with `response: null`) go to the error file. Bodies stay raw bytes: they are never decoded
beyond their `usage`.
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import msgspec

from batch_gateway.events.batch_events import Usage


class ResponsePart(msgspec.Struct, frozen=True):
    status_code: int
    request_id: str | None
    body: msgspec.Raw


class ErrorPart(msgspec.Struct, frozen=True):
    code: str
    message: str


class ResultLine(msgspec.Struct, frozen=True):
    id: str
    custom_id: str
    response: ResponsePart | None
    error: ErrorPart | None

    @property
    def succeeded(self) -> bool:
        return self.response is not None and 200 <= self.response.status_code < 300


def new_request_id() -> str:
    return f"batch_req_{_random_hex()}"


def _random_hex() -> str:
    # 128 random bits, as uuid4 has, from the interpreter's generator rather than a system call
    # per id: ids must be unique, not secret, and this is paid for every request of a batch.
    # (`random` reseeds itself in a forked child, so processes never share a sequence.)
    return f"{random.getrandbits(128):032x}"


def answered(
    custom_id: str, status: int, request_id: str | None, body: bytes, is_json: bool
) -> ResultLine:
    """A line for a request the server answered; a body that is not JSON becomes a string, and
    a server that names no request id gets one of ours, so every response can be traced."""
    raw = msgspec.Raw(body if is_json and body else _encoder.encode(body.decode(errors="replace")))
    response = ResponsePart(status, request_id or f"req_{_random_hex()}", raw)
    return ResultLine(new_request_id(), custom_id, response, None)


def unanswered(custom_id: str, code: str, message: str) -> ResultLine:
    return ResultLine(new_request_id(), custom_id, None, ErrorPart(code, message))


class _Details(msgspec.Struct):
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class _Usage(msgspec.Struct):
    # Chat and completions name them prompt/completion; the Responses API input/output.
    prompt_tokens: int = 0
    completion_tokens: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: _Details | None = None
    completion_tokens_details: _Details | None = None
    input_tokens_details: _Details | None = None
    output_tokens_details: _Details | None = None


class _WithUsage(msgspec.Struct):
    usage: _Usage | None = None


_usage_decoder = msgspec.json.Decoder(_WithUsage)
_encoder = msgspec.json.Encoder()


def usage_of(line: ResultLine) -> Usage:
    """The token usage a successful response reports (zeros when it reports none)."""
    if line.response is None:
        return Usage()
    try:
        usage = _usage_decoder.decode(line.response.body).usage
    except (msgspec.DecodeError, msgspec.ValidationError):
        return Usage()
    if usage is None:
        return Usage()
    input_details = usage.prompt_tokens_details or usage.input_tokens_details or _Details()
    output_details = usage.completion_tokens_details or usage.output_tokens_details or _Details()
    input_tokens = usage.prompt_tokens or usage.input_tokens
    output_tokens = usage.completion_tokens or usage.output_tokens
    return Usage(
        input_tokens=input_tokens,
        cached_tokens=input_details.cached_tokens,
        output_tokens=output_tokens,
        reasoning_tokens=output_details.reasoning_tokens,
        total_tokens=usage.total_tokens or input_tokens + output_tokens,
    )


def add_usage(a: Usage, b: Usage) -> Usage:
    return Usage(
        input_tokens=a.input_tokens + b.input_tokens,
        cached_tokens=a.cached_tokens + b.cached_tokens,
        output_tokens=a.output_tokens + b.output_tokens,
        reasoning_tokens=a.reasoning_tokens + b.reasoning_tokens,
        total_tokens=a.total_tokens + b.total_tokens,
    )


def encode_line(line: ResultLine) -> bytes:
    return _encoder.encode(line) + b"\n"


_line_decoder = msgspec.json.Decoder(ResultLine)


def decode_line(raw: bytes | bytearray) -> ResultLine:
    return _line_decoder.decode(raw)


class LineCounter:
    """Counts the lines of a result file while its bytes stream into storage (its event
    records `line_count`). Every result line ends with a newline, so newlines are lines."""

    def __init__(self) -> None:
        self.lines = 0

    async def count(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        async for chunk in chunks:
            self.lines += chunk.count(b"\n")
            yield chunk
