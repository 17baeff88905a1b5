"""`InstrumentedStorage`: any `ObjectStorage`, with its operations counted and timed.

`open_storage` wraps every plug-in in it, so each component that stores bytes reports
`batch_gateway_storage_operations_total{operation,backend,outcome}`,
`batch_gateway_storage_operation_duration_seconds{operation,backend}` and
`batch_gateway_storage_bytes_total{operation}`. Every operation passes through `_operation`,
the one place that observes it, and that makes its span (`storage.read`, ...) when it runs
within a trace.

A read is timed until the object is open (its first byte is known to exist), not while the
caller streams it: that time is the caller's. Its bytes are counted as they are streamed. An
operation cancelled midway is not counted: it neither succeeded nor failed. A write whose
input failed (the upload went over its size limit, the client went away) is `aborted`, not an
`error` of the store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from typing import Literal

from prometheus_client import Counter, Histogram

from batch_gateway.storage.base import ObjectReader, ObjectStorage, StoredObject
from batch_gateway.storage.errors import ObjectNotFound, ObjectTooLarge, StorageError
from batch_gateway.tracing import span

Operation = Literal["write", "read", "delete", "stat", "list"]

OPERATIONS = Counter(
    "batch_gateway_storage_operations_total",
    "Storage operations by outcome: ok, not_found, error (the store failed), aborted (the "
    "bytes to write failed: over the size limit, the client went away).",
    ["operation", "backend", "outcome"],
)
DURATION = Histogram(
    "batch_gateway_storage_operation_duration_seconds",
    "Duration of a storage operation (a read until the object is open).",
    ["operation", "backend"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
)
BYTES = Counter(
    "batch_gateway_storage_bytes_total", "Bytes written to and read from storage.", ["operation"]
)
# Resolved once: the read counter moves with every chunk streamed.
_BYTES_WRITTEN = BYTES.labels("write")
_BYTES_READ = BYTES.labels("read")


class InstrumentedStorage:
    """An `ObjectStorage` that reports what the storage it wraps does."""

    def __init__(self, inner: ObjectStorage, backend: str) -> None:
        self._inner = inner
        self._backend = backend

    @contextlib.contextmanager
    def _operation(self, operation: Operation) -> Iterator[_Outcome]:
        # A leaf span, never current: `list` holds it across the `yield`s of a generator.
        attributes = {"batch_gateway.storage.backend": self._backend}
        with (
            span(
                f"storage.{operation}",
                attributes=attributes,
                only_within_trace=True,
                current=False,
            ),
            self._observed(operation) as outcome,
        ):
            yield outcome

    @contextlib.contextmanager
    def _observed(self, operation: Operation) -> Iterator[_Outcome]:
        started = time.perf_counter()
        outcome = _Outcome()
        try:
            yield outcome
        except GeneratorExit:
            self._count(operation, outcome.value, started)  # a listing its reader left early
            raise
        except ObjectNotFound:
            self._count(operation, "not_found", started)
            raise
        except ObjectTooLarge:
            self._count(operation, "aborted", started)
            raise
        except StorageError:
            self._count(operation, "error", started)
            raise
        except Exception:
            # Not the store's own error: a write's chunks raised, or a bug in the caller.
            self._count(operation, "aborted" if operation == "write" else "error", started)
            raise
        self._count(operation, outcome.value, started)

    def _count(self, operation: Operation, outcome: str, started: float) -> None:
        DURATION.labels(operation, self._backend).observe(time.perf_counter() - started)
        OPERATIONS.labels(operation, self._backend, outcome).inc()

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        with self._operation("write"):
            written = await self._inner.write(key, chunks)
        _BYTES_WRITTEN.inc(written)
        return written

    async def read(self, key: str, offset: int = 0) -> ObjectReader:
        with self._operation("read"):
            reader = await self._inner.read(key, offset)
        return ObjectReader(reader.size, _CountedChunks(reader))

    async def delete(self, key: str) -> bool:
        with self._operation("delete") as outcome:
            deleted = await self._inner.delete(key)
            if not deleted:
                outcome.value = "not_found"  # deletes are idempotent: nothing was there
        return deleted

    async def exists(self, key: str) -> bool:
        with self._operation("stat"):
            return await self._inner.exists(key)

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        with self._operation("list"):
            async for stored in self._inner.list(prefix):
                yield stored

    async def check(self) -> None:
        await self._inner.check()  # a probe, not work: counting it would drown the rest

    async def close(self) -> None:
        await self._inner.close()


class _Outcome:
    """How an operation that did not raise ended: `ok`, or `not_found` for a vain delete."""

    def __init__(self) -> None:
        self.value = "ok"


class _CountedChunks:
    """An opened object's chunks, counted into `batch_gateway_storage_bytes_total` as read."""

    def __init__(self, reader: ObjectReader) -> None:
        self._reader = reader

    async def read_chunk(self) -> bytes:
        chunk = await anext(self._reader, b"")
        _BYTES_READ.inc(len(chunk))
        return chunk

    async def close(self) -> None:
        await self._reader.aclose()
