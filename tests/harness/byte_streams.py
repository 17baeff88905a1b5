"""Async byte streams for feeding storage writes in tests."""

import itertools
from collections.abc import AsyncIterator, Sequence

import anyio
import anyio.lowlevel


async def chunked(data: bytes, sizes: Sequence[int]) -> AsyncIterator[bytes]:
    """Yield `data` in chunks whose sizes cycle through `sizes`."""
    offset = 0
    for size in itertools.cycle(sizes):
        if offset >= len(data):
            return
        yield data[offset : offset + size]
        offset += size
        # A real upload yields to the event loop between chunks; so do we.
        await anyio.lowlevel.checkpoint()


async def failing_after(data: bytes, chunk_size: int, error: Exception) -> AsyncIterator[bytes]:
    """Yield `data` in chunks, then raise `error` as a dropped client or a limit would."""
    async for chunk in chunked(data, [chunk_size]):
        yield chunk
    raise error


async def stalling_after(
    data: bytes, chunk_size: int, started: anyio.Event
) -> AsyncIterator[bytes]:
    """Yield `data` in chunks, set `started`, then wait forever (until cancelled)."""
    async for chunk in chunked(data, [chunk_size]):
        yield chunk
    started.set()
    await anyio.sleep_forever()
    yield b""  # never reached; keeps this an async generator after the wait


def pattern(size: int) -> bytes:
    """`size` bytes that are not periodic in any small chunk size, so misordering shows."""
    block = bytes(range(251))  # 251 is prime
    repeated = block * (size // len(block) + 1)
    return repeated[:size]
