"""Streaming a `multipart/form-data` upload straight into storage.

The form is parsed as it arrives (with `multipart`, the parser Litestar itself uses), and
the bytes of the `file` part flow into `ObjectStorage.write` chunk by chunk: a 200 MB
upload never sits in memory or in a temporary file, and the size and line limits stop it
the moment they are passed, before anything is stored (storage removes the partial object).
Fields sent after the file are still read, because storage drains the whole form.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterable, AsyncIterator

from multipart import MultipartSegment, ParserError, ParserLimitReached, PushMultipartParser

from batch_gateway.errors import InvalidRequest, RequestTimeout

# Text fields (purpose, expires_after) are tiny; anything bigger is not a form we expect.
MAX_FIELD_BYTES = 64 * 1024
MAX_PARTS = 16


class LineLimitExceeded(InvalidRequest):
    pass


class UploadForm:
    """The text fields and the file of one upload, filled in while the body streams."""

    def __init__(
        self,
        body: AsyncIterable[bytes],
        boundary: str,
        batch_line_limit: int,
        idle_timeout_seconds: float,
    ) -> None:
        self._body = _stalling_after(body, idle_timeout_seconds)
        self._boundary = boundary
        self._batch_line_limit = batch_line_limit
        self.fields: dict[str, str] = {}
        self.filename: str | None = None
        self.file_bytes = 0
        self.newlines = 0
        self._last_byte = b""

    @property
    def has_file(self) -> bool:
        return self.filename is not None

    @property
    def line_count(self) -> int:
        """Lines in the file, a last line without a trailing newline included."""
        trailing = 1 if self.file_bytes and self._last_byte != b"\n" else 0
        return self.newlines + trailing

    async def file_chunks(self) -> AsyncIterator[bytes]:
        """The bytes of the `file` part; reading them to the end parses the whole form."""
        field = bytearray()
        segment: MultipartSegment | None = None
        in_file = False
        try:
            with PushMultipartParser(self._boundary, max_segment_count=MAX_PARTS) as parser:
                async for chunk in self._body:
                    for part in parser.parse(chunk):
                        if isinstance(part, MultipartSegment):
                            segment = part
                            in_file = part.name == "file" and part.filename is not None
                            if in_file:
                                if self.has_file:
                                    raise InvalidRequest(
                                        "Only one file may be uploaded.", param="file"
                                    )
                                self.filename = part.filename or ""
                        elif part and in_file:
                            self._count(part)
                            yield part
                        elif part:
                            field.extend(part)
                            if len(field) > MAX_FIELD_BYTES:
                                raise InvalidRequest(
                                    "A form field is too long.", param=segment and segment.name
                                )
                        elif segment is not None:
                            if not in_file:
                                self._add_field(segment, bytes(field))
                            field.clear()
                            segment, in_file = None, False
                    if not chunk:
                        break
                if not parser.closed:
                    raise InvalidRequest("The multipart body ended early.", param="file")
        except ParserLimitReached as error:
            # Too many parts, or a part's headers too long (a filename of thousands of
            # characters): a malformed form rather than too many bytes, so a 400.
            raise InvalidRequest(
                f"The multipart body is over this server's limits: {error}", param="file"
            ) from error
        except ParserError as error:
            raise InvalidRequest(
                f"The multipart body is malformed: {error}", param="file"
            ) from error

    def _count(self, data: bytes) -> None:
        self.file_bytes += len(data)
        self.newlines += data.count(b"\n")
        self._last_byte = data[-1:]
        # The SDK sends `purpose` before the file, so the limit usually bites mid-stream;
        # when it comes after, the upload command checks `line_count` once the form is read.
        if self.fields.get("purpose") == "batch":
            self.check_line_limit()

    def check_line_limit(self) -> None:
        if self.line_count > self._batch_line_limit:
            raise LineLimitExceeded(
                f"A batch input file may have at most {self._batch_line_limit} lines.",
                param="file",
                code="too_many_lines",
            )

    def _add_field(self, segment: MultipartSegment, value: bytes) -> None:
        name = segment.name or ""
        try:
            self.fields[name] = value.decode(segment.charset or "utf-8")
        except LookupError as error:  # a charset Python has no codec for
            raise InvalidRequest(
                f"The field {name!r} names an unknown charset.", param=name
            ) from error
        except ValueError as error:  # undecodable bytes, or a NUL in the charset's name
            raise InvalidRequest(f"The field {name!r} is not valid text.", param=name) from error


async def _stalling_after(body: AsyncIterable[bytes], seconds: float) -> AsyncIterator[bytes]:
    """The body's chunks; RequestTimeout when the next one takes longer than `seconds`."""
    chunks = aiter(body)
    while True:
        try:
            async with asyncio.timeout(seconds):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError as error:
            raise RequestTimeout(
                f"The upload sent nothing for {seconds:g} seconds and was dropped; nothing of "
                "it was stored.",
                param="file",
            ) from error
        yield chunk
