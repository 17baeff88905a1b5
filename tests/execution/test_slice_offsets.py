"""A slice is read from the byte offset validation found for its first request: the requests
it gets are exactly those it would get by counting requests from the start of the file, with
blank lines, CRLF line ends, a BOM and a final line without a newline, however the file was
chunked when validated (ADR 0031)."""

from __future__ import annotations

import asyncio
import itertools
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from batch_gateway.processors.validation.input_file import validate_input
from batch_gateway.results.lines import UTF8_BOM
from batch_gateway.results.requests import Request, requests_of
from batch_gateway.storage.filesystem import FilesystemStorage
from tests.processors.batch_inputs import CHAT, jsonl, request_line

KEY = "files/t/input"


async def _chunks(parts: Sequence[bytes]) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _file(requests: int, blanks: list[int], crlf: bool, bom: bool, final_newline: bool) -> bytes:
    lines = jsonl(request_line(f"r{n}", model=f"m{n % 3}") for n in range(requests)).split(b"\n")
    lines.pop()  # the empty piece after the last newline
    for position in sorted(blanks, reverse=True):
        lines.insert(position % (len(lines) + 1), b"  " if position % 2 else b"")
    data = (b"\r\n" if crlf else b"\n").join(lines)
    if final_newline:
        data += b"\n"
    return (UTF8_BOM if bom else b"") + data


async def _requests(
    storage: FilesystemStorage, first: int, end: int | None, offset: int
) -> list[Request]:
    reader = requests_of(storage, KEY, skip=(), first=first, end=end, offset=offset)
    return [request async for request in reader]


async def _check(data: bytes, cuts: list[int], slice_size: int) -> None:
    bounds = [0, *sorted(cut % (len(data) + 1) for cut in cuts), len(data)]
    parts = [data[start:end] for start, end in itertools.pairwise(bounds)]
    result = await validate_input(
        _chunks(parts), endpoint=CHAT, max_requests=1000, max_errors=10, slice_size=slice_size
    )
    assert result.errors == []
    slices = -(-result.total // slice_size)
    assert len(result.slice_offsets) == (slices if slices > 1 else 0)
    with tempfile.TemporaryDirectory() as root:
        storage = FilesystemStorage(Path(root))
        await storage.open()
        await storage.write(KEY, _chunks([data]))
        everything = await _requests(storage, 0, None, 0)
        assert len(everything) == result.total
        for number, offset in enumerate(result.slice_offsets):
            first, end = number * slice_size, (number + 1) * slice_size
            counted = await _requests(storage, first, end, 0)
            assert await _requests(storage, first, end, offset) == counted
            assert counted == everything[first:end]


@settings(max_examples=60, deadline=None)
@given(
    requests=st.integers(min_value=1, max_value=40),
    blanks=st.lists(st.integers(min_value=0, max_value=100), max_size=8),
    crlf=st.booleans(),
    bom=st.booleans(),
    final_newline=st.booleans(),
    cuts=st.lists(st.integers(min_value=0), max_size=10),
    slice_size=st.integers(min_value=1, max_value=12),
)
def test_a_slice_read_from_its_offset_gets_the_requests_counted_from_the_start(
    requests: int,
    blanks: list[int],
    crlf: bool,
    bom: bool,
    final_newline: bool,
    cuts: list[int],
    slice_size: int,
) -> None:
    data = _file(requests, blanks, crlf, bom, final_newline)
    asyncio.run(_check(data, cuts, slice_size))


def test_one_slice_needs_no_offsets() -> None:
    data = _file(5, [], crlf=False, bom=False, final_newline=True)
    result = asyncio.run(
        validate_input(_chunks([data]), endpoint=CHAT, max_requests=10, max_errors=1, slice_size=5)
    )
    assert result.slice_offsets == []
