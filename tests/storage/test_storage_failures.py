"""Writes that fail or are cancelled midway leave nothing behind, on both plug-ins."""

import anyio
import pytest

from batch_gateway.storage import ObjectNotFound, ObjectTooLarge, limit_size
from tests.harness.byte_streams import chunked, failing_after, pattern, stalling_after
from tests.harness.storage_backend import Backend

MIB = 1024 * 1024


class ClientWentAway(Exception):
    """Stands in for a client disconnect surfacing from the upload stream."""


async def assert_nothing_left(backend: Backend, key: str) -> None:
    assert not await backend.storage.exists(key)
    with pytest.raises(ObjectNotFound):
        await backend.storage.read(key)
    assert [stored async for stored in backend.storage.list("")] == []
    assert await backend.incomplete_uploads() == []


# 100 KiB fails inside the first S3 part; 12 MiB fails after two parts were uploaded.
@pytest.mark.parametrize("size_before_failure", [100 * 1024, 12 * MIB])
async def test_a_failing_stream_leaves_nothing_and_its_error_propagates(
    backend: Backend, size_before_failure: int
) -> None:
    error = ClientWentAway()

    with pytest.raises(ClientWentAway) as raised:
        await backend.storage.write(
            "files/t/obj", failing_after(pattern(size_before_failure), 65_521, error)
        )

    assert raised.value is error
    await assert_nothing_left(backend, "files/t/obj")


async def test_a_failed_overwrite_keeps_the_previous_object(backend: Backend) -> None:
    await backend.storage.write("files/t/obj", chunked(b"previous", [3]))

    with pytest.raises(ClientWentAway):
        await backend.storage.write(
            "files/t/obj", failing_after(pattern(6 * MIB), 65_521, ClientWentAway())
        )

    async with await backend.storage.read("files/t/obj") as reader:
        assert b"".join([chunk async for chunk in reader]) == b"previous"
    assert await backend.incomplete_uploads() == []


@pytest.mark.parametrize("size", [100 * 1024, 12 * MIB])
async def test_an_oversized_stream_is_refused_and_leaves_nothing(
    backend: Backend, size: int
) -> None:
    limit = size - 1

    with pytest.raises(ObjectTooLarge) as raised:
        await backend.storage.write(
            "files/t/obj", limit_size(chunked(pattern(size), [8191]), limit)
        )

    assert raised.value.limit == limit
    await assert_nothing_left(backend, "files/t/obj")


@pytest.mark.parametrize("size_before_cancel", [100 * 1024, 12 * MIB])
async def test_a_cancelled_write_leaves_nothing(backend: Backend, size_before_cancel: int) -> None:
    started = anyio.Event()

    async def write() -> None:
        await backend.storage.write(
            "files/t/obj", stalling_after(pattern(size_before_cancel), 65_521, started)
        )

    async with anyio.create_task_group() as task_group:
        task_group.start_soon(write)
        await started.wait()
        task_group.cancel_scope.cancel()

    await assert_nothing_left(backend, "files/t/obj")


async def test_limit_size_passes_a_stream_exactly_at_the_limit() -> None:
    passed = [chunk async for chunk in limit_size(chunked(b"0123456789", [3]), 10)]

    assert b"".join(passed) == b"0123456789"


async def test_limit_size_never_yields_the_chunk_that_crosses_the_limit() -> None:
    passed: list[bytes] = []

    async def consume() -> None:
        async for chunk in limit_size(chunked(b"0123456789", [4]), 9):
            passed.append(chunk)

    with pytest.raises(ObjectTooLarge):
        await consume()

    assert passed == [b"0123", b"4567"]
