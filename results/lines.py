"""Splitting a byte stream into lines with memory bounded by the longest line, or by a limit.

Input files come from users: one line may be hundreds of megabytes with no newline at all.
`LineSplitter` never holds more than `max_line_bytes` of one line: past the limit it drops
what it collected, skips to the next newline and returns `TOO_LONG` for the line, so validation
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
    wrote, an input file validation has passed (see `LineSplitter`)."""
    async for batch in line_batches(chunks):
        for number, line in batch:
            assert not isinstance(line, TooLong)  # no limit, so never
            yield number, line


async def line_batches(
    chunks: AsyncIterable[bytes], *, max_line_bytes: int | None = None
) -> AsyncIterator[list[tuple[int, Line | TooLong]]]:
    """(1-based line number, line without its newline or CR, or `TOO_LONG` for a line longer
    than `max_line_bytes`), a list per chunk: a reader of many short lines then pays for one
    async step a chunk, not one a line."""
    splitter = LineSplitter(max_line_bytes)
    async for chunk in chunks:
        if batch := splitter.feed(chunk):
            yield batch
    if batch := splitter.end():
        yield batch


class LineSplitter:
    """Splits chunks into numbered lines. A BOM at the start is dropped (editors on Windows add
    one) and a final line without a newline still counts.

    Chunks may split anything, the BOM and a CRLF included. A line spanning chunks is collected
    in one bytearray that grows in place (amortized linear), and returned as it is.
    """

    def __init__(self, max_line_bytes: int | None, *, track_offsets: bool = False) -> None:
        self._limit = max_line_bytes
        # With `track_offsets`, `starts` holds where each line `feed` returned begins, in bytes
        # from the start of the data (a BOM included): where a reader may start again.
        self._track = track_offsets
        self.starts: list[int] = []
        self._position = 0  # bytes of the data before the chunk being split
        self._partial_start = 0
        self._partial: bytearray | None = None  # a line still waiting for its newline
        self._skipping = False  # within a line already found too long: drop until its newline
        self._number = 0
        self._head: bytes | None = b""  # the first bytes, until they show whether a BOM starts

    def feed(self, chunk: bytes) -> list[tuple[int, Line | TooLong]]:
        """The lines `chunk` ends (with what earlier chunks began)."""
        if self._head is not None:
            self._head += chunk
            if len(self._head) < len(UTF8_BOM) and UTF8_BOM.startswith(self._head):
                return []
            head, self._head = self._head, None
            chunk = head.removeprefix(UTF8_BOM)
            self._position = len(head) - len(chunk)
        lines: list[tuple[int, Line | TooLong]] = []
        limit, start, base = self._limit, 0, self._position
        if self._track:
            self.starts = []
        while (end := chunk.find(b"\n", start)) >= 0:
            self._number += 1
            if self._track:
                began_earlier = self._partial is not None or self._skipping
                self.starts.append(self._partial_start if began_earlier else base + start)
            if self._skipping:
                self._skipping = False
                lines.append((self._number, TOO_LONG))
            elif self._partial is not None:
                line, self._partial = self._partial, None
                line += memoryview(chunk)[start:end]
                lines.append((self._number, _bounded(_without_cr(line), limit)))
            else:
                lines.append((self._number, _bounded(_without_cr(chunk[start:end]), limit)))
            start = end + 1
        if start < len(chunk) and not self._skipping:
            if self._partial is None:
                self._partial = bytearray()
                self._partial_start = base + start
            self._partial += memoryview(chunk)[start:]
            if limit is not None and len(self._partial) > limit + 1:
                self._partial, self._skipping = None, True  # +1: the CR of a CRLF does not count
        self._position = base + len(chunk)
        return lines

    def end(self) -> list[tuple[int, Line | TooLong]]:
        """The last line, if the data did not end with a newline."""
        if self._head and self._head != UTF8_BOM:
            # The data ended within its first three bytes, and they were not a BOM: no newline
            # among them, so they are all one last line.
            head, self._head = self._head, None
            self.feed(head)
        self.starts = [self._partial_start]
        if self._skipping:
            return [(self._number + 1, TOO_LONG)]
        if self._partial:
            return [(self._number + 1, _bounded(_without_cr(self._partial), self._limit))]
        self.starts = []
        return []


def _without_cr(line: Line) -> Line:
    if line.endswith(b"\r"):
        if isinstance(line, bytearray):
            del line[-1:]  # in place: a long line is not copied for one byte
            return line
        return line[:-1]
    return line


def _bounded(line: Line, limit: int | None) -> Line | TooLong:
    return TOO_LONG if limit is not None and len(line) > limit else line
