"""`numbered_lines`: the same lines whatever the chunking, as `bytes.split` sees them;
`line_batches` with a limit: the same, with every line past the limit reported as `TOO_LONG`
and never held in memory whole."""

from __future__ import annotations

import asyncio
import itertools
import tracemalloc
from collections.abc import AsyncIterable, AsyncIterator, Sequence

from hypothesis import given
from hypothesis import strategies as st

from batch_gateway.results.lines import (
    TOO_LONG,
    UTF8_BOM,
    Line,
    LineSplitter,
    TooLong,
    line_batches,
    numbered_lines,
)

Lines = list[tuple[int, Line]]
BoundedLines = list[tuple[int, Line | TooLong]]


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


async def _collect(parts: Sequence[bytes]) -> Lines:
    return [line async for line in numbered_lines(_chunks(parts))]


def _lines(parts: Sequence[bytes]) -> Lines:
    return asyncio.run(_collect(parts))


def _expected(data: bytes) -> Lines:
    """The law: split on LF, drop a CR before it, drop one leading BOM; a newline ends a line
    rather than starting an empty one."""
    pieces = data.removeprefix(UTF8_BOM).split(b"\n")
    if pieces[-1] == b"":
        pieces.pop()
    return [(number, piece.removesuffix(b"\r")) for number, piece in enumerate(pieces, start=1)]


def _split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    return [data[start:end] for start, end in itertools.pairwise(bounds)]


# Pieces that make the boundaries interesting: line ends, halves of CRLF and of the BOM.
_pieces = st.sampled_from(
    [b"a", b"{}", b"\n", b"\r", b"\r\n", UTF8_BOM, b"\xef", b"\xbb\xbf", b" ", b"x" * 70]
)
_data = st.tuples(st.booleans(), st.lists(_pieces, max_size=40)).map(
    lambda bom_and_pieces: (UTF8_BOM if bom_and_pieces[0] else b"") + b"".join(bom_and_pieces[1])
)


@given(data=_data, cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_any_chunking_yields_the_lines_of_bytes_split(data: bytes, cuts: list[int]) -> None:
    assert _lines(_split_at(data, cuts)) == _expected(data)


@given(data=st.binary(max_size=300), cuts=st.lists(st.integers(min_value=0), max_size=12))
def test_arbitrary_bytes_in_arbitrary_chunks(data: bytes, cuts: list[int]) -> None:
    assert _lines(_split_at(data, cuts)) == _expected(data)


def _starts(parts: Sequence[bytes], limit: int | None) -> list[tuple[int, int]]:
    """(line number, where the splitter says the line begins) for every line."""
    splitter = LineSplitter(limit, track_offsets=True)
    starts: list[tuple[int, int]] = []
    for part in parts:
        lines = splitter.feed(part)
        starts += [
            (number, start) for (number, _), start in zip(lines, splitter.starts, strict=True)
        ]
    lines = splitter.end()
    starts += [(number, start) for (number, _), start in zip(lines, splitter.starts, strict=True)]
    return starts


@given(
    data=_data,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    limit=st.none() | st.integers(min_value=0, max_value=80),
)
def test_each_line_starts_where_the_splitter_says(
    data: bytes, cuts: list[int], limit: int | None
) -> None:
    """The offsets a reader may start again from: the byte after the previous newline (the
    first line: after a leading BOM), whatever the chunking, also for a line too long."""
    body_start = len(UTF8_BOM) if data.startswith(UTF8_BOM) else 0
    newlines = [index + 1 for index, byte in enumerate(data) if byte == 0x0A]
    expected = [body_start, *newlines]
    starts = _starts(_split_at(data, cuts), limit)
    assert [start for _, start in starts] == expected[: len(starts)]
    assert [number for number, _ in starts] == list(range(1, len(starts) + 1))
    assert len(starts) == len(_expected(data))


def test_crlf_line_ends_are_dropped_with_their_cr() -> None:
    assert _lines([b"one\r\ntwo\r", b"\nthree\r\n"]) == [(1, b"one"), (2, b"two"), (3, b"three")]


def test_a_lone_cr_inside_a_line_is_kept() -> None:
    assert _lines([b"a\rb\n"]) == [(1, b"a\rb")]


def test_a_leading_bom_is_dropped_even_when_split_over_chunks() -> None:
    expected = [(1, b"{}"), (2, b"{}")]
    assert _lines([UTF8_BOM + b"{}\n{}\n"]) == expected
    assert _lines([b"\xef", b"\xbb", b"\xbf{}\n", b"{}\n"]) == expected
    assert _lines([b"", b"\xef\xbb", b"", b"\xbf{}\n{}"]) == expected


def test_only_the_leading_bom_is_dropped() -> None:
    assert _lines([b"a\n" + UTF8_BOM + b"b\n"]) == [(1, b"a"), (2, UTF8_BOM + b"b")]
    assert _lines([UTF8_BOM + UTF8_BOM + b"a"]) == [(1, UTF8_BOM + b"a")]


def test_a_final_line_without_a_newline_still_counts() -> None:
    assert _lines([b"one\ntw", b"o"]) == [(1, b"one"), (2, b"two")]


def test_blank_lines_keep_their_numbers() -> None:
    assert _lines([b"\n\na\n\n"]) == [(1, b""), (2, b""), (3, b"a"), (4, b"")]


def test_nothing_yields_no_lines() -> None:
    assert _lines([]) == []
    assert _lines([b"", b""]) == []
    assert _lines([UTF8_BOM]) == []
    assert _lines([b"\xef\xbb"]) == [(1, b"\xef\xbb")]  # half a BOM is just bytes


def test_a_line_longer_than_many_chunks_is_joined() -> None:
    line = bytes(range(32, 127)) * 2000
    parts = [line[i : i + 1000] for i in range(0, len(line), 1000)]
    assert _lines([*parts, b"\nend"]) == [(1, line), (2, b"end")]


async def _bounded_lines(chunks: AsyncIterable[bytes], limit: int) -> BoundedLines:
    return [line async for batch in line_batches(chunks, max_line_bytes=limit) for line in batch]


async def _collect_bounded(parts: Sequence[bytes], limit: int) -> BoundedLines:
    return await _bounded_lines(_chunks(parts), limit)


def _bounded(parts: Sequence[bytes], limit: int) -> BoundedLines:
    return asyncio.run(_collect_bounded(parts, limit))


@given(
    data=_data,
    cuts=st.lists(st.integers(min_value=0), max_size=12),
    limit=st.integers(min_value=0, max_value=80),
)
def test_a_limit_replaces_exactly_the_longer_lines_whatever_the_chunking(
    data: bytes, cuts: list[int], limit: int
) -> None:
    expected = [
        (number, TOO_LONG if len(line) > limit else line) for number, line in _expected(data)
    ]
    assert _bounded(_split_at(data, cuts), limit) == expected


def test_a_line_of_exactly_the_limit_passes_with_or_without_its_cr() -> None:
    assert _bounded([b"abc\r", b"\nabcd\n"], 3) == [(1, b"abc"), (2, TOO_LONG)]


def test_a_huge_line_without_a_newline_is_never_held_whole() -> None:
    limit = 1 << 20
    chunk = b"x" * (1 << 16)

    async def huge() -> AsyncIterator[bytes]:
        yield b'{"custom_id": "a"}\n'
        for _ in range(64 * 16):  # 64 MiB, no newline until the very end
            yield chunk
        yield b"\n{}"

    tracemalloc.start()
    try:
        lines = asyncio.run(_bounded_lines(huge(), limit))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lines == [(1, b'{"custom_id": "a"}'), (2, TOO_LONG), (3, b"{}")]
    assert peak < 4 * limit, f"peak {peak} bytes for a 64 MiB line and a 1 MiB limit"
