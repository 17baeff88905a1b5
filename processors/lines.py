"""Splitting a byte stream into lines with memory bounded by the longest line."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator

UTF8_BOM = b"\xef\xbb\xbf"


async def numbered_lines(chunks: AsyncIterable[bytes]) -> AsyncIterator[tuple[int, bytes]]:
    """Yield (1-based line number, line without its newline); a BOM at the start is dropped
    (editors on Windows add one) and a final line without a newline still counts.

    Chunks may split anything, the BOM and a CRLF included. A line longer than a chunk is
    collected as a list of parts and joined once its newline arrives, so joining costs time
    linear in its length (appending to one bytes object would copy it once per chunk).
    """
    partial: list[bytes] = []  # parts of the line still waiting for its newline
    number = 0
    async for chunk in _without_bom(chunks):
        lines = chunk.split(b"\n")
        if len(lines) == 1:
            if chunk:
                partial.append(chunk)
            continue
        if partial:
            partial.append(lines[0])
            lines[0] = b"".join(partial)
            partial = []
        last = lines.pop()
        if last:
            partial.append(last)
        for line in lines:
            number += 1
            yield number, line.removesuffix(b"\r")
    if partial:
        yield number + 1, b"".join(partial).removesuffix(b"\r")


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
