"""Results are committed in chunks: objects in storage first, then a `batch.progress` event.

A chunk counts only once its progress event is in the log; objects of a chunk whose event
never made it (a crash in between, a processor that lost its job) are orphans that nothing
reads, and the gc sweeps them. Chunk names carry the claim number, so a late writer never
overwrites what its successor committed. At most one commit runs at a time; lines that arrive
meanwhile wait for the next.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from batch_gateway.events.batch_events import BatchProgress, RequestCounts
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
        state = ownership.state
        self.counts = state.request_counts
        self.usage = state.usage
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
            name = f"{self._ownership.claim}-{self._number}"
            state = self._ownership.state
            for kind, lines in zip(KINDS, (output, errors), strict=True):
                if lines:
                    key = result_chunk_key(state.tenant, state.id, name, kind)
                    await self._storage.write(key, _encoded(lines))
            usage = self.usage
            for line in output:
                usage = add_usage(usage, usage_of(line))
            counts = RequestCounts(
                total=self.counts.total,
                completed=self.counts.completed + len(output),
                failed=self.counts.failed + len(errors),
            )
            await self._ownership.append(
                [BatchProgress(request_counts=counts, usage=usage, chunk=name)]
            )
            self.counts, self.usage = counts, usage
            return len(output) + len(errors)


async def _encoded(lines: list[ResultLine]) -> AsyncIterator[bytes]:
    yield b"".join(encode_line(line) for line in lines)


async def committed_custom_ids(
    storage: ObjectStorage, tenant: str, batch_id: str, chunks: list[str]
) -> set[str]:
    """Every custom_id with a committed result: what a resumed job must not send again."""
    done: set[str] = set()
    for kind in KINDS:
        lines = numbered_lines(committed_lines(storage, tenant, batch_id, chunks, kind))
        async for _, raw in lines:
            done.add(decode_line(raw).custom_id)
    return done
