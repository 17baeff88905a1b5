"""Round trips through both storage plug-ins."""

import pytest

from batch_gateway.storage import ObjectNotFound, ObjectStorage
from tests.harness.byte_streams import chunked, pattern

MIB = 1024 * 1024
# Odd sizes, so chunk boundaries never line up with S3 parts or with read chunks.
ODD_CHUNK_SIZES = [1, 4097, 65_537, 300_001, 7, 1_048_583]


async def read_all(storage: ObjectStorage, key: str) -> bytes:
    async with await storage.read(key) as reader:
        return b"".join([chunk async for chunk in reader])


@pytest.mark.parametrize("size", [0, 1, 3 * MIB + 17, 12 * MIB + 5])
async def test_round_trip_returns_the_bytes_written(storage: ObjectStorage, size: int) -> None:
    data = pattern(size)

    written = await storage.write("files/t/obj", chunked(data, ODD_CHUNK_SIZES))

    assert written == size
    async with await storage.read("files/t/obj") as reader:
        assert reader.size == size
        chunks = [chunk async for chunk in reader]
    assert b"".join(chunks) == data
    assert all(0 < len(chunk) <= 64 * 1024 for chunk in chunks)


@pytest.mark.parametrize("offset", [0, 1, 65_536, 3 * MIB + 16])
async def test_a_read_from_an_offset_streams_the_rest(storage: ObjectStorage, offset: int) -> None:
    data = pattern(3 * MIB + 17)
    await storage.write("files/t/obj", chunked(data, ODD_CHUNK_SIZES))

    async with await storage.read("files/t/obj", offset) as reader:
        assert reader.size == len(data) - offset
        rest = b"".join([chunk async for chunk in reader])

    assert rest == data[offset:]


async def test_write_replaces_an_existing_object(storage: ObjectStorage) -> None:
    await storage.write("files/t/obj", chunked(b"old contents", [5]))
    await storage.write("files/t/obj", chunked(b"new", [2]))

    assert await read_all(storage, "files/t/obj") == b"new"


async def test_read_of_a_missing_key_fails_before_any_byte(storage: ObjectStorage) -> None:
    with pytest.raises(ObjectNotFound) as raised:
        await storage.read("files/t/missing")

    assert raised.value.key == "files/t/missing"


async def test_a_reader_closed_early_releases_and_stops(storage: ObjectStorage) -> None:
    await storage.write("files/t/obj", chunked(pattern(MIB), [MIB]))

    reader = await storage.read("files/t/obj")
    first = await anext(reader)
    await reader.aclose()
    await reader.aclose()

    assert first == pattern(MIB)[: len(first)]
    assert [chunk async for chunk in reader] == []
    # The released connection or file does not stand in the way of further use.
    assert await read_all(storage, "files/t/obj") == pattern(MIB)


async def test_delete_is_idempotent(storage: ObjectStorage) -> None:
    await storage.write("files/t/obj", chunked(b"bytes", [2]))

    assert await storage.exists("files/t/obj")
    assert await storage.delete("files/t/obj") is True
    assert await storage.delete("files/t/obj") is False
    assert not await storage.exists("files/t/obj")
    with pytest.raises(ObjectNotFound):
        await storage.read("files/t/obj")


async def test_list_reports_what_was_written_under_the_prefix(storage: ObjectStorage) -> None:
    sizes = {"files/a/one": 3, "files/a/two": 5, "files/ab/three": 7, "results/a/four": 11}
    for key, size in sizes.items():
        await storage.write(key, chunked(pattern(size), [2]))

    under_a = {stored.key: stored async for stored in storage.list("files/a/")}
    under_files_a = {stored.key async for stored in storage.list("files/a")}
    everything = {stored.key async for stored in storage.list("")}

    assert {key: stored.size for key, stored in under_a.items()} == {
        "files/a/one": 3,
        "files/a/two": 5,
    }
    assert all(stored.modified_at > 1_600_000_000 for stored in under_a.values())
    assert under_files_a == {"files/a/one", "files/a/two", "files/ab/three"}
    assert everything == set(sizes)
    assert [stored async for stored in storage.list("nothing/here/")] == []
