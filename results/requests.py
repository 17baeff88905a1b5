"""Reading the requests of an input file as the executor needs them: streamed, from where a
slice begins, skipping what is already done."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection

import msgspec

from batch_gateway.results.lines import TooLong, line_batches
from batch_gateway.storage import ObjectStorage


class _Line(msgspec.Struct):
    custom_id: str
    body: msgspec.Raw


class _Model(msgspec.Struct):
    model: str | None = None


_line_decoder = msgspec.json.Decoder(_Line)
_model_decoder = msgspec.json.Decoder(_Model)


class Request(msgspec.Struct, frozen=True):
    custom_id: str
    model: str | None
    body: bytes


async def requests_of(
    storage: ObjectStorage,
    key: str,
    *,
    skip: Collection[str],
    first: int = 0,
    end: int | None = None,
    offset: int = 0,
) -> AsyncIterator[Request]:
    """The file's requests (validated already), whatever their model, leaving out the
    custom_ids in `skip`; only the requests `first` to `end` (exclusive) in the file's order,
    blank lines not counted (a slice of the batch). `offset` is where request `first` begins
    in the file, in bytes (validation records it, ADR 0031); 0 counts from the start."""
    reader = await storage.read(key, offset)
    # From an `offset` (where request `first` begins), the first request read is `first`.
    ordinal = first - 1 if offset else -1
    async with reader:
        async for batch in line_batches(reader):
            for _, raw in batch:
                assert not isinstance(raw, TooLong)  # no limit, so never
                if not raw or raw.isspace():
                    continue  # blank (and `strip` would copy a long line just to see that)
                ordinal += 1
                if ordinal < first:
                    continue  # another slice's: not even decoded
                if end is not None and ordinal >= end:
                    return
                line = _line_decoder.decode(raw)
                if line.custom_id in skip:
                    continue
                model = _model_decoder.decode(line.body).model
                yield Request(line.custom_id, model, bytes(line.body))
