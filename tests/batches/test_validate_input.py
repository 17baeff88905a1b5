"""`validate_input` on its own, no servers: every error code with its line, however the
storage happens to chunk the file."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from batch_gateway.processors.validation.input_file import ValidationResult, validate_input
from tests.harness.batch_helpers import CHAT, chat_file, chat_line, jsonl
from tests.harness.invalid_inputs import INVALID_INPUTS, Expected, raw_lines

CHUNK_SIZES = [1 << 20, 1, 2, 7]


async def _chunks(data: bytes, size: int) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


def _validate(
    data: bytes,
    *,
    endpoint: str = CHAT,
    max_requests: int = 50_000,
    max_errors: int = 100,
    allow_multiple_models: bool = True,
    chunk_size: int = 1 << 20,
) -> ValidationResult:
    return asyncio.run(
        validate_input(
            _chunks(data, chunk_size),
            endpoint=endpoint,
            max_requests=max_requests,
            max_errors=max_errors,
            allow_multiple_models=allow_multiple_models,
        )
    )


def _errors(result: ValidationResult) -> Expected:
    return [(error.code, error.line, error.param) for error in result.errors]


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
@pytest.mark.parametrize(
    ("data", "expected"),
    [pytest.param(data, expected, id=name) for name, data, expected in INVALID_INPUTS],
)
def test_each_error_code_names_its_line(data: bytes, expected: Expected, chunk_size: int) -> None:
    result = _validate(data, chunk_size=chunk_size)
    assert _errors(result) == expected
    assert all(error.message for error in result.errors)


@pytest.mark.parametrize("chunk_size", CHUNK_SIZES)
def test_a_valid_file_counts_its_requests_and_models(chunk_size: int) -> None:
    data = b"\xef\xbb\xbf\n" + jsonl([chat_line("a", "m2"), chat_line("b", "m1")]) + b"\r\n"
    data += raw_lines(chat_line("c", "m2")).rstrip(b"\n")  # a last line without its newline
    result = _validate(data, chunk_size=chunk_size)
    assert result == ValidationResult(total=3, models=["m1", "m2"], errors=[])


def test_a_bom_alone_is_an_empty_file() -> None:
    assert _errors(_validate(b"\xef\xbb\xbf")) == [("empty_file", 1, None)]


def test_only_the_leading_bom_is_dropped() -> None:
    data = chat_file(1) + b"\xef\xbb\xbf" + raw_lines(chat_line("b"))
    assert _errors(_validate(data)) == [("invalid_json_line", 2, None)]


def test_too_many_requests_stops_at_the_first_line_over_the_limit() -> None:
    data = b"\n" + chat_file(5)
    assert _validate(data, max_requests=5).errors == []
    assert _errors(_validate(data, max_requests=3)) == [("too_many_requests", 5, None)]


def test_at_most_max_errors_are_reported() -> None:
    data = raw_lines(*(chat_line(f"r{i}", method="GET") for i in range(10)))
    result = _validate(data, max_errors=4)
    assert _errors(result) == [("invalid_method", line, "method") for line in (1, 2, 3, 4)]
    # One line with two faults may not push the count past the cap either.
    data = raw_lines(*(chat_line(f"r{i}", method="GET", url="/v1/embeddings") for i in range(3)))
    assert len(_validate(data, max_errors=3).errors) == 3


def test_a_line_can_have_several_faults() -> None:
    data = raw_lines(chat_line("a", method="GET", url="/v1/embeddings"))
    assert _errors(_validate(data)) == [("invalid_method", 1, "method"), ("invalid_url", 1, "url")]


def test_moderations_need_no_model_other_endpoints_do() -> None:
    line = {"custom_id": "m", "method": "POST", "url": "/v1/moderations", "body": {"input": "x"}}
    moderations = _validate(raw_lines(line), endpoint="/v1/moderations")
    assert moderations == ValidationResult(total=1, models=[], errors=[])
    embeddings = raw_lines(line | {"url": "/v1/embeddings"})
    assert _errors(_validate(embeddings, endpoint="/v1/embeddings")) == [
        ("missing_required_parameter", 1, "body.model")
    ]


def test_settings_may_forbid_mixing_models() -> None:
    data = jsonl([chat_line("a", "m1"), chat_line("b", "m2")])
    assert _validate(data).errors == []
    assert [error.code for error in _validate(data, allow_multiple_models=False).errors] == [
        "multiple_models"
    ]


def test_stream_false_is_fine() -> None:
    line = chat_line("a")
    line["body"]["stream"] = False
    assert _validate(raw_lines(line)).errors == []
