"""Splitting a byte stream into lines with memory bounded by the longest line, or by a limit.

Input files come from users: one line may be hundreds of megabytes with no newline at all.
`bounded_lines` never holds more than `max_line_bytes` of one line: past the limit it drops
what it collected, skips to the next newline and yields `TOO_LONG` for the line, so validation
reports it and goes on.
"""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from typing import Final

UTF8_BOM = b"\xef\xbb\xbf"


class TooLong:
    def __repr__(self) -> str:
        return "TOO_LONG"


# Yielded in place of a line longer than `max_line_bytes`.
TOO_LONG: Final = TooLong()

# A line as it comes: bytes when it was whole within one chunk, a bytearray (collected in place,
# never copied) when it spanned chunks. Decoders take either.
Line = bytes | bytearray


async def numbered_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, Line]]:
    """The lines of data whose line lengths are known to be bounded: result chunks this system
    wrote, an input file validation has passed (see `bounded_lines`)."""
    async for number, line in bounded_lines(chunks, max_line_bytes=None):
        assert not isinstance(line, TooLong)  # no limit, so never
        yield number, line


async def bounded_lines(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int | None
) -> AsyncIterator[tuple[int, Line | TooLong]]:
    """Yield (1-based line number, line without its newline or CR), or `TOO_LONG` for a line
    longer than `max_line_bytes`. A BOM at the start is dropped (editors on Windows add one) and
    a final line without a newline still counts.

    Chunks may split anything, the BOM and a CRLF included. A line spanning chunks is collected
    in one bytearray that grows in place (amortized linear), and yielded as it is.
    """
    partial: bytearray | None = None  # a line still waiting for its newline
    skipping = False  # within a line already found too long: drop until its newline
    number = 0
    async for chunk in _without_bom(chunks):
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            number += 1
            if skipping:
                skipping = False
                yield number, TOO_LONG
            elif partial is not None:
                partial += memoryview(chunk)[start:end]
                line, partial = partial, None
                yield number, _bounded(_without_cr(line), max_line_bytes)
            else:
                yield number, _bounded(_without_cr(chunk[start:end]), max_line_bytes)
            start = end + 1
        if start < len(chunk) and not skipping:
            if partial is None:
                partial = bytearray()
            partial += memoryview(chunk)[start:]
            if max_line_bytes is not None and len(partial) > max_line_bytes + 1:
                partial, skipping = None, True  # +1: the CR of a CRLF does not count
    if skipping:
        yield number + 1, TOO_LONG
    elif partial:
        yield number + 1, _bounded(_without_cr(partial), max_line_bytes)


def _without_cr(line: Line) -> Line:
    if line.endswith(b"\r"):
        if isinstance(line, bytearray):
            del line[-1:]  # in place: a long line is not copied for one byte
            return line
        return line[:-1]
    return line


def _bounded(line: Line, limit: int | None) -> Line | TooLong:
    return TOO_LONG if limit is not None and len(line) > limit else line


async def _without_bom(chunks: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
    """The chunks, with a UTF-8 BOM at the very start of the stream removed."""
    head = b""  # the first bytes, held until they show whether the stream starts with a BOM
    iterator = aiter(chunks)
    async for chunk in iterator:
        head += chunk
        if len(head) >= len(UTF8_BOM) or not UTF8_BOM.startswith(head):
            yield head.removeprefix(UTF8_BOM)
            break
    else:
        # The stream ended within the first three bytes: all of a BOM, part of one, or none.
        if head and head != UTF8_BOM:
            yield head
        return
    async for chunk in iterator:
        yield chunk
