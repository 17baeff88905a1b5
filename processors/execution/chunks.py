"""Results are committed in chunks: objects in storage first, then a `batch.progress` event.

A chunk counts only once its progress event is in the log; objects of a chunk whose event
never made it (a crash in between, a processor that lost its job) are orphans that nothing
reads, and the gc sweeps them. Chunk names carry the slice and its claim number
(`s<slice>_<claim>-<n>`), so a late writer never overwrites what its successor committed, and
a slice resumed after a crash reads only its own chunks. Slices commit concurrently, so a
progress event's cumulative counts and usage are the batch's as of the append plus the chunk's
(decided again when another slice's commit came first). At most one commit runs at a time per
slice; lines that arrive meanwhile wait for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import msgspec

from batch_gateway.events.batch_aggregate import BatchState
from batch_gateway.events.batch_events import BatchEvent, BatchProgress, Usage
from batch_gateway.processors.execution.ownership import Ownership
from batch_gateway.results.lines import numbered_lines
from batch_gateway.results.result_files import committed_lines
from batch_gateway.results.result_lines import (
    ResultLine,
    add_usage,
    decode_line,
    encode_line,
    usage_of,
)
from batch_gateway.storage import ObjectStorage, result_chunk_key

KINDS = ("output", "errors")


class ChunkSink:
    def __init__(self, storage: ObjectStorage, ownership: Ownership, chunk_size: int) -> None:
        self._storage = storage
        self._ownership = ownership
        self._chunk_size = chunk_size
        self._number = 0
        self._output: list[ResultLine] = []
        self._errors: list[ResultLine] = []
        self._lock = asyncio.Lock()

    @property
    def pending(self) -> int:
        return len(self._output) + len(self._errors)

    @property
    def full(self) -> bool:
        return self.pending >= self._chunk_size

    def add(self, line: ResultLine) -> None:
        """Buffer a line; the job's committer task commits (one place for commit failures)."""
        (self._output if line.succeeded else self._errors).append(line)

    async def commit(self) -> int:
        """Commit the buffered lines as one chunk; returns how many lines it committed."""
        async with self._lock:
            if not self.pending:
                return 0
            output, errors = self._output, self._errors
            self._output, self._errors = [], []
            self._number += 1
            ownership = self._ownership
            name = chunk_name(ownership.slice, ownership.claim, self._number)
            state = ownership.state
            for kind, lines in zip(KINDS, (output, errors), strict=True):
                if lines:
                    key = result_chunk_key(state.tenant, state.id, name, kind)
                    await self._storage.write(key, _encoded(lines))
            added = Usage()
            for line in output:
                added = add_usage(added, usage_of(line))

            def progress(state: BatchState) -> list[BatchEvent]:
                counts = msgspec.structs.replace(
                    state.request_counts,
                    completed=state.request_counts.completed + len(output),
                    failed=state.request_counts.failed + len(errors),
                )
                usage = add_usage(state.usage, added)
                return [BatchProgress(request_counts=counts, usage=usage, chunk=name)]

            await ownership.update(progress)
            return len(output) + len(errors)


def chunk_name(slice_number: int, claim: int, number: int) -> str:
    return f"s{slice_number}_{claim}-{number}"


def slice_of_chunk(name: str) -> int:
    """The slice that committed a chunk; chunks named before slices (`<claim>-<n>`) are of
    the batch's one slice."""
    if not name.startswith("s"):
        return 0
    return int(name[1:].partition("_")[0])


async def _encoded(lines: list[ResultLine]) -> AsyncIterator[bytes]:
    yield b"".join(encode_line(line) for line in lines)


async def committed_custom_ids(
    state: BatchState, storage: ObjectStorage, slice_number: int
) -> set[str]:
    """Every custom_id of the slice with a committed result: what a resumed slice must not
    send again."""
    done: set[str] = set()
    chunks = [name for name in state.chunks if slice_of_chunk(name) == slice_number]
    for kind in KINDS:
        lines = numbered_lines(committed_lines(storage, state.tenant, state.id, chunks, kind))
        async for _, raw in lines:
            done.add(decode_line(raw).custom_id)
    return done
