"""Publishing a batch's output or error file: its bytes in storage, then `file.uploaded`.

Result files get ids derived from the batch id (one id per writer: the processors' files and
the gc's expiry file never collide), so a writer that publishes again after a crash writes the
same bytes under the same key and finds the file's event already appended.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator

from batch_gateway.events import EventLog, FileUploaded
from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.results.result_lines import LineCounter
from batch_gateway.storage import ObjectNotFound, ObjectStorage, file_object_key, result_chunk_key

FILENAMES = {"output": "{}_output.jsonl", "errors": "{}_error.jsonl"}


def result_file_id(batch_id: str, kind: str) -> str:
    return "file-" + hashlib.sha256(f"{batch_id}:{kind}".encode()).hexdigest()[:24]


async def publish_result_file(
    log: EventLog,
    storage: ObjectStorage,
    state: BatchState,
    *,
    file_id: str,
    kind: str,
    lines: AsyncIterator[bytes],
    created_at: int,
    default_expiry: int,
) -> tuple[int, int] | None:
    """Write `lines` as the batch's `kind` file `file_id` and append its `file.uploaded`;
    (bytes, lines), or None when there were no lines (no file, as at OpenAI). Raises
    `VersionConflict` when the file's event exists already (an earlier attempt published it)."""
    key = file_object_key(state.tenant, file_id)
    counter = LineCounter()
    size = await storage.write(key, counter.count(lines))
    if size == 0:
        await storage.delete(key)
        return None
    expiry = state.output_expires_after_seconds or default_expiry
    event = FileUploaded(
        filename=FILENAMES[kind].format(state.id),
        purpose="batch_output",
        bytes=size,
        created_at=created_at,
        expires_at=created_at + expiry,
        storage_key=key,
        line_count=counter.lines,
    )
    await log.append(file_id, state.tenant, 0, [event])
    return size, counter.lines


async def committed_lines(
    storage: ObjectStorage, tenant: str, batch_id: str, chunks: list[str], kind: str
) -> AsyncIterator[bytes]:
    """The raw lines of every committed chunk of one kind, in commit order."""
    for chunk in chunks:
        try:
            reader = await storage.read(result_chunk_key(tenant, batch_id, chunk, kind))
        except ObjectNotFound:
            continue  # a chunk with no lines of this kind writes no object
        async with reader:
            async for data in reader:
                yield data


async def remove_chunks(storage: ObjectStorage, state: BatchState) -> None:
    """Once the files exist, the chunks are copies: remove them."""
    for chunk in state.chunks:
        for kind in FILENAMES:
            await storage.delete(result_chunk_key(state.tenant, state.id, chunk, kind))
