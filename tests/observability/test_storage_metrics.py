"""`open_storage` hands out storage whose every operation is counted, timed and sized."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batch_gateway.storage import (
    ObjectNotFound,
    ObjectTooLarge,
    StorageSettings,
    limit_size,
    open_storage,
)
from tests.observability.samples import value


async def _chunks(*parts: bytes) -> AsyncIterator[bytes]:
    for part in parts:
        yield part


def _operations(operation: str, outcome: str) -> float:
    return value(
        "batch_gateway_storage_operations_total",
        operation=operation,
        backend="filesystem",
        outcome=outcome,
    )


OUTCOMES = [
    ("write", "ok"),
    ("write", "aborted"),
    ("read", "ok"),
    ("read", "not_found"),
    ("delete", "ok"),
    ("delete", "not_found"),
    ("stat", "ok"),
    ("list", "ok"),
]


async def test_each_operation_is_counted_with_its_outcome(tmp_path: Path) -> None:
    storage = await open_storage(StorageSettings(fs_root=str(tmp_path / "files")))
    before = {key: _operations(*key) for key in OUTCOMES}
    bytes_before = {
        op: value("batch_gateway_storage_bytes_total", operation=op) for op in ("write", "read")
    }
    reads_timed = value(
        "batch_gateway_storage_operation_duration_seconds_count",
        operation="read",
        backend="filesystem",
    )
    try:
        await storage.write("a/object", _chunks(b"hello ", b"world"))
        with pytest.raises(ObjectTooLarge):
            await storage.write("a/big", limit_size(_chunks(b"x" * 10), 5))
        async with await storage.read("a/object") as reader:
            content = b"".join([chunk async for chunk in reader])
        with pytest.raises(ObjectNotFound):
            await storage.read("a/missing")
        assert await storage.exists("a/object")
        listed = [stored.key async for stored in storage.list("a/")]
        assert await storage.delete("a/object")
        assert not await storage.delete("a/object")
    finally:
        await storage.close()

    assert content == b"hello world"
    assert listed == ["a/object"]
    assert {key: _operations(*key) - before[key] for key in OUTCOMES} == dict.fromkeys(OUTCOMES, 1)
    assert (
        value("batch_gateway_storage_bytes_total", operation="write") == bytes_before["write"] + 11
    )
    assert value("batch_gateway_storage_bytes_total", operation="read") == bytes_before["read"] + 11
    timed = value(
        "batch_gateway_storage_operation_duration_seconds_count",
        operation="read",
        backend="filesystem",
    )
    assert timed == reads_timed + 2
