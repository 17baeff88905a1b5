"""The storage interface every plug-in implements, and the reader it hands out.

One small, streaming interface: writes consume an async iterator of chunks and either store
the whole object or leave nothing behind; reads open the object first (so a missing object is
known before the first byte, and an HTTP handler can still answer 404) and then stream it.
"""

from collections.abc import AsyncIterable, AsyncIterator
from types import TracebackType
from typing import Protocol, Self, final

import anyio
import msgspec

READ_CHUNK_BYTES = 64 * 1024


class StoredObject(msgspec.Struct, frozen=True, kw_only=True):
    """One object as a listing reports it."""

    key: str
    size: int
    modified_at: float
    """Last modification, in unix seconds."""


class ChunkSource(Protocol):
    """An opened object's bytes, as an adapter produces them for `ObjectReader`."""

    async def read_chunk(self) -> bytes:
        """The next chunk, or `b""` once the object is exhausted."""
        ...

    async def close(self) -> None:
        """Release the file or connection behind the source."""
        ...


@final
class ObjectReader:
    """The bytes of one opened object, streamed as chunks; its size is known up front.

    Use it as `async with await storage.read(key) as reader: async for chunk in reader`. It
    releases its file or connection when exhausted, on error, or on `aclose()`, whichever
    comes first; `aclose()` is idempotent.
    """

    def __init__(self, size: int, source: ChunkSource) -> None:
        self._size = size
        self._source = source
        self._closed = False

    @property
    def size(self) -> int:
        """The object's size in bytes."""
        return self._size

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        if self._closed:
            raise StopAsyncIteration
        try:
            chunk = await self._source.read_chunk()
        except BaseException:
            await self.aclose()
            raise
        if not chunk:
            await self.aclose()
            raise StopAsyncIteration
        return chunk

    async def aclose(self) -> None:
        """Release the underlying resource; safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        # Shielded: a reader is often closed because its consumer was cancelled, and the
        # connection or file must be released all the same.
        with anyio.CancelScope(shield=True):
            await self._source.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class ObjectStorage(Protocol):
    """Where file bytes live: a bucket in an S3-compatible store, or a shared volume."""

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        """Store `chunks` under `key`, replacing any object there; return the bytes written.

        Streams: never holds the whole object in memory. If `chunks` raises (a size limit, a
        client that went away) or the write is cancelled, nothing is left under the key (an
        object already there stays as it was) and the iterator's exception propagates
        unchanged. A write cancelled after `chunks` was exhausted may still complete.
        """
        ...

    async def read(self, key: str, offset: int = 0) -> ObjectReader:
        """Open the object under `key` for streaming from byte `offset` (its size is then what
        is left from there); raise `ObjectNotFound` if it is absent."""
        ...

    async def delete(self, key: str) -> bool:
        """Delete the object under `key`; return whether there was one. Idempotent."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        """Every stored object whose key starts with `prefix`, including abandoned partials."""
        ...

    async def check(self) -> None:
        """Raise `StorageUnavailable` unless the backend answers and can serve us."""
        ...

    async def close(self) -> None:
        """Release the backend's connections; the storage is unusable afterwards."""
        ...
