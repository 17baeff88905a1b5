"""Keys come from tenant and file ids only, and no key can reach outside its namespace."""

import re
from pathlib import Path

import anyio
import pytest

from batch_gateway.storage import FilesystemStorage, ObjectStorage, file_object_key
from tests.harness.byte_streams import chunked

HOSTILE_IDS = ["../x", "/etc/passwd", "a\x00b", "a/b", "", "x" * 65, "file.txt", "abc\n", "é"]
HOSTILE_TENANTS = ["../../etc", "/etc/passwd", "a\x00b", "tenant/../other", "\\\\server\\share"]
HOSTILE_KEYS = ["../escape", "/etc/passwd", "files/../../escape", "files/a\x00b", "", "a//b"]


def test_file_key_is_built_from_a_tenant_digest_and_the_file_id() -> None:
    key = file_object_key("acme", "file-abc_123")

    assert re.fullmatch(r"files/[0-9a-f]{32}/file-abc_123", key)
    assert key == file_object_key("acme", "file-abc_123")
    assert key != file_object_key("other", "file-abc_123")


@pytest.mark.parametrize("file_id", HOSTILE_IDS)
def test_file_ids_that_could_escape_are_rejected(file_id: str) -> None:
    with pytest.raises(ValueError, match="file id"):
        file_object_key("acme", file_id)


@pytest.mark.parametrize("tenant", HOSTILE_TENANTS)
def test_hostile_tenants_are_contained_in_one_digest_segment(tenant: str) -> None:
    assert re.fullmatch(r"files/[0-9a-f]{32}/file-1", file_object_key(tenant, "file-1"))


def test_an_empty_tenant_is_rejected() -> None:
    with pytest.raises(ValueError, match="tenant"):
        file_object_key("", "file-1")


@pytest.mark.parametrize("key", HOSTILE_KEYS)
async def test_every_operation_rejects_keys_that_could_escape(
    storage: ObjectStorage, key: str
) -> None:
    with pytest.raises(ValueError, match="key"):
        await storage.write(key, chunked(b"bytes", [5]))
    with pytest.raises(ValueError, match="key"):
        await storage.read(key)
    with pytest.raises(ValueError, match="key"):
        await storage.exists(key)
    with pytest.raises(ValueError, match="key"):
        await storage.delete(key)


@pytest.mark.parametrize("prefix", ["../", "/etc/", "files/../", "a\x00"])
async def test_listing_rejects_prefixes_that_could_escape(
    storage: ObjectStorage, prefix: str
) -> None:
    with pytest.raises(ValueError, match="key"):
        _ = [stored async for stored in storage.list(prefix)]


async def test_hostile_tenants_stay_inside_the_filesystem_root(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    storage = FilesystemStorage(root)
    await storage.open()
    for tenant in HOSTILE_TENANTS:
        await storage.write(file_object_key(tenant, "file-1"), chunked(b"bytes", [5]))

    stored_files = [path async for path in anyio.Path(tmp_path).rglob("*") if await path.is_file()]

    assert len(stored_files) == len(HOSTILE_TENANTS)
    assert all(path.is_relative_to(root / "files") for path in stored_files)


async def test_a_symlink_out_of_the_filesystem_root_is_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"secret")
    storage = FilesystemStorage(tmp_path / "objects")
    await storage.open()
    (tmp_path / "objects" / "files").mkdir()
    (tmp_path / "objects" / "files" / "link").symlink_to(outside, target_is_directory=True)

    with pytest.raises(ValueError, match="outside"):
        await storage.read("files/link/secret")
    with pytest.raises(ValueError, match="outside"):
        await storage.write("files/link/planted", chunked(b"x", [1]))
    assert [stored async for stored in storage.list("")] == []
    assert [path.name for path in outside.iterdir()] == ["secret"]


async def test_abandoned_partial_files_are_listed_for_the_orphan_sweep(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "objects")
    await storage.open()
    (tmp_path / "objects" / "files").mkdir()
    (tmp_path / "objects" / "files" / "obj.0123.partial").write_bytes(b"torn")

    listed = [stored.key async for stored in storage.list("files/")]

    assert listed == ["files/obj.0123.partial"]
    assert await storage.delete("files/obj.0123.partial")
    with pytest.raises(ValueError, match="partial"):
        await storage.write("files/obj.partial", chunked(b"x", [1]))
