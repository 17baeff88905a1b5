"""Size limits enforced while bytes stream in, before they are stored."""

from collections.abc import AsyncIterable, AsyncIterator

from batch_gateway.storage.errors import ObjectTooLarge


async def limit_size(chunks: AsyncIterable[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """Pass `chunks` through, raising `ObjectTooLarge` once their total passes `max_bytes`.

    The chunk that crosses the limit is never yielded, so a storage write fed by this
    generator fails (and leaves nothing behind) without ever holding the excess bytes.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must not be negative, got {max_bytes}")
    total = 0
    async for chunk in chunks:
        total += len(chunk)
        if total > max_bytes:
            raise ObjectTooLarge(max_bytes)
        yield chunk
