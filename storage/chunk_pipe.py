"""Carries chunks from the event loop to a blocking reader in a worker thread.

The minio client uploads from a file-like object with a blocking `read(n)`. `ChunkPipe` gives
it one: the event loop task that owns the async chunk iterator pushes chunks into a small
bounded buffer (`feed`), and the worker thread pulls them out (`read`). The iterator is only
ever advanced by its owning task, and the buffer bounds memory and applies back-pressure.
"""

from collections.abc import AsyncIterable

import anyio
import anyio.from_thread


class UploadAbandoned(Exception):
    """Raised inside the worker thread when the chunk iterator failed, to abort the upload."""


class ChunkPipe:
    """A bounded, one-way channel of bytes from an async producer to a blocking reader."""

    def __init__(self, max_buffered_chunks: int) -> None:
        self._send, self._receive = anyio.create_memory_object_stream[bytes](max_buffered_chunks)
        self._abandoned = False
        self._pending = b""

    async def feed(self, chunks: AsyncIterable[bytes]) -> int:
        """Push every chunk into the pipe; return the bytes pushed.

        If `chunks` raises or the feed is cancelled, the pipe is marked abandoned before it is
        closed, so the reader raises `UploadAbandoned` instead of seeing a clean end of data
        and completing a truncated object. Raises `anyio.BrokenResourceError` if the reader
        went away first (its own error says why).
        """
        pushed = 0
        try:
            async for chunk in chunks:
                if chunk:
                    await self._send.send(chunk)
                    pushed += len(chunk)
        except BaseException:
            self._abandoned = True
            raise
        finally:
            self._send.close()
        return pushed

    def read(self, size: int = -1) -> bytes:
        """Block (in a worker thread) until `size` bytes or the end of data are available.

        Returning whole parts at once matters: minio concatenates what `read` returns, and
        many small reads would make that quadratic in the part size.
        """
        pieces = [self._pending] if self._pending else []
        available = len(self._pending)
        self._pending = b""
        while size < 0 or available < size:
            try:
                chunk = anyio.from_thread.run(self._receive.receive)
            except anyio.EndOfStream:
                if self._abandoned:
                    raise UploadAbandoned from None
                break
            except BaseException as error:
                # The wait was cancelled along with the write. minio aborts the multipart
                # upload only on an Exception, so a cancellation must not reach it as such.
                raise UploadAbandoned from error
            pieces.append(chunk)
            available += len(chunk)
        data = b"".join(pieces)
        if 0 <= size < len(data):
            data, self._pending = data[:size], data[size:]
        return data

    def close_reader(self) -> None:
        """Called once the reader is done, so that a producer still feeding stops."""
        self._receive.close()
