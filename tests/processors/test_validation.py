"""`validate_input`: OpenAI's line errors with 1-based line numbers, whatever the chunking."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Sequence

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_gateway.processors.validation.input_file import ValidationResult, validate_input
from tests.processors.batch_inputs import CHAT, jsonl, request_line


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _validate(
    data: bytes | Sequence[bytes],
    *,
    endpoint: str = CHAT,
    max_requests: int = 50_000,
    max_errors: int = 100,
    allow_multiple_models: bool = True,
) -> ValidationResult:
    parts = [data] if isinstance(data, bytes) else data
    return asyncio.run(
        validate_input(
            _chunks(parts),
            endpoint=endpoint,
            max_requests=max_requests,
            max_errors=max_errors,
            allow_multiple_models=allow_multiple_models,
        )
    )


def _codes(result: ValidationResult) -> list[tuple[str, int | None]]:
    return [(error.code, error.line) for error in result.errors]


def test_a_valid_file_counts_requests_and_models() -> None:
    data = b"\xef\xbb\xbf" + jsonl(
        [request_line("a", model="m2"), request_line("b"), request_line("c", model="m2")]
    )
    assert _validate(data) == ValidationResult(total=3, models=["m1", "m2"], errors=[])


def test_blank_lines_are_skipped_but_keep_their_numbers() -> None:
    data = b"\n" + jsonl([request_line("a")]) + b"  \r\n\n" + jsonl(["nope"])
    result = _validate(data)
    assert result.total == 2
    assert _codes(result) == [("invalid_json_line", 5)]


def test_each_kind_of_bad_line_has_its_code_and_param() -> None:
    data = jsonl(
        [
            {"method": "POST", "url": CHAT, "body": {"model": "m"}},
            {"custom_id": "b", "url": CHAT, "body": {"model": "m"}},
            {"custom_id": "c", "method": "POST", "url": CHAT},
            {**request_line("d"), "method": "GET"},
            request_line("e", model=None),
            request_line("f", model=None, stream=False),
            {**request_line("g"), "body": [1]},
            "[1, 2]",
        ]
    )
    result = _validate(data)
    assert [(e.code, e.line, e.param) for e in result.errors] == [
        ("missing_required_parameter", 1, "custom_id"),
        ("missing_required_parameter", 2, "method"),
        ("missing_required_parameter", 3, "body"),
        ("invalid_method", 4, "method"),
        ("missing_required_parameter", 5, "body.model"),
        ("missing_required_parameter", 6, "body.model"),
        ("invalid_json_line", 7, "body"),
        ("invalid_json_line", 8, None),
    ]


def test_moderations_need_no_model() -> None:
    data = jsonl([request_line("a", model=None, url="/v1/moderations", input="hi")])
    assert _validate(data, endpoint="/v1/moderations").errors == []


def _encoded(line: dict[str, object], encoding: str) -> bytes:
    return json.dumps(line, ensure_ascii=False).encode(encoding) + b"\n"


def test_bytes_that_are_not_utf8_fail_the_line_wherever_they_are() -> None:
    data = b"".join(
        [
            _encoded(request_line("ok", content="déjà vu 日本語"), "utf-8"),
            # Inside the body, which the decoder skips over without decoding it.
            _encoded(request_line("a", content="café"), "latin-1"),
            _encoded(request_line("café"), "latin-1"),
            # In a field nobody reads.
            _encoded({**request_line("b"), "note": "naïve"}, "latin-1"),
            b"\xff\xfe{\n",
        ]
    )
    result = _validate(data)
    assert _codes(result) == [("invalid_file_encoding", line) for line in (2, 3, 4, 5)]


def test_an_empty_file_is_an_error() -> None:
    for data in (b"", b"\n\n", b"\xef\xbb\xbf", b" \r\n"):
        assert _codes(_validate(data)) == [("empty_file", 1)]


def test_more_requests_than_allowed_stop_at_the_first_extra_line() -> None:
    data = jsonl([request_line(f"r{i}") for i in range(5)])
    result = _validate(data, max_requests=3)
    assert _codes(result) == [("too_many_requests", 4)]


def test_at_most_max_errors_are_reported() -> None:
    data = jsonl([{**request_line(f"r{i}"), "method": "GET", "url": "/v1/x"} for i in range(10)])
    result = _validate(data, max_errors=3)
    assert _codes(result) == [("invalid_method", 1), ("invalid_url", 1), ("invalid_method", 2)]


def test_mixing_models_can_be_refused() -> None:
    data = jsonl([request_line("a", model="m1"), request_line("b", model="m2")])
    assert _validate(data).errors == []
    result = _validate(data, allow_multiple_models=False)
    assert [(e.code, e.param) for e in result.errors] == [("multiple_models", "body.model")]


_lines = st.sampled_from(
    [
        request_line("a"),
        request_line("b", model="m2"),
        request_line("c", url="/v1/embeddings"),
        request_line("d", stream=True),
        "",
        "{broken",
    ]
)


@settings(max_examples=50)
@given(lines=st.lists(_lines, max_size=12), cuts=st.lists(st.integers(min_value=0), max_size=8))
def test_the_verdict_does_not_depend_on_the_chunking(
    lines: list[dict[str, object] | str], cuts: list[int]
) -> None:
    data = b"\xef\xbb\xbf" + jsonl(lines).replace(b"\n", b"\r\n")
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    parts = [data[start:end] for start, end in itertools.pairwise(bounds)]
    assert _validate(parts) == _validate(data)
