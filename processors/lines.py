"""Splitting a byte stream into lines with memory bounded by the longest line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

UTF8_BOM = b"\xef\xbb\xbf"


async def numbered_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its newline); a BOM at the start is dropped
    (editors on Windows add one) and a final line without a newline still counts."""
    pending = b""
    number = 0
    first = True
    async for chunk in chunks:
        if first and chunk:
            chunk = chunk.removeprefix(UTF8_BOM)
            first = False
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            number += 1
            yield number, line.removesuffix(b"\r")
    if pending:
        yield number + 1, pending.removesuffix(b"\r")
