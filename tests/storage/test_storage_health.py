"""Readiness checks and opening storage from settings."""

import socket
from pathlib import Path

import pytest

from batch_gateway.storage import (
    FilesystemStorage,
    ObjectStorage,
    S3Storage,
    StorageSettings,
    StorageUnavailable,
    open_storage,
)
from tests.harness.s3_server import S3Endpoint


def unused_local_url() -> str:
    """An http URL on 127.0.0.1 where, just now, nothing listens."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


async def test_check_passes_on_a_working_backend(storage: ObjectStorage) -> None:
    await storage.check()


async def test_check_fails_when_nobody_listens_at_the_s3_endpoint() -> None:
    storage = S3Storage(
        endpoint=unused_local_url(), bucket="bucket", access_key="key", secret_key="secret"
    )
    await storage.open()
    try:
        with pytest.raises(StorageUnavailable):
            await storage.check()
    finally:
        await storage.close()


async def test_check_fails_when_the_bucket_is_missing(s3_endpoint: S3Endpoint) -> None:
    storage = S3Storage(
        endpoint=s3_endpoint.url,
        bucket="never-created",
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        region=s3_endpoint.region,
    )
    await storage.open()
    try:
        with pytest.raises(StorageUnavailable, match="does not exist"):
            await storage.check()
    finally:
        await storage.close()


async def test_check_fails_when_the_filesystem_root_is_gone(tmp_path: Path) -> None:
    storage = FilesystemStorage(tmp_path / "objects")
    await storage.open()
    (tmp_path / "objects").rmdir()

    with pytest.raises(StorageUnavailable):
        await storage.check()


async def test_open_storage_creates_the_filesystem_root(tmp_path: Path) -> None:
    root = tmp_path / "data" / "files"

    storage = await open_storage(StorageSettings(fs_root=str(root)))

    assert root.is_dir()
    await storage.check()
    await storage.close()


async def test_open_storage_creates_the_s3_bucket(s3_endpoint: S3Endpoint) -> None:
    settings = StorageSettings(
        kind="s3",
        s3_endpoint=s3_endpoint.url,
        s3_bucket="created-by-open-storage",
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
        s3_region=s3_endpoint.region,
    )

    storage = await open_storage(settings)
    try:
        await storage.check()
    finally:
        await storage.close()


async def test_open_storage_fails_when_the_bucket_cannot_be_created() -> None:
    settings = StorageSettings(
        kind="s3",
        s3_endpoint=unused_local_url(),
        s3_access_key="key",
        s3_secret_key="secret",
    )

    with pytest.raises(StorageUnavailable):
        await open_storage(settings)


@pytest.mark.parametrize(
    ("missing", "settings"),
    [
        ("s3_endpoint", StorageSettings(kind="s3", s3_access_key="k", s3_secret_key="s")),
        (
            "s3_access_key",
            StorageSettings(kind="s3", s3_endpoint="http://s3:9000", s3_secret_key="s"),
        ),
        (
            "s3_secret_key",
            StorageSettings(kind="s3", s3_endpoint="http://s3:9000", s3_access_key="k"),
        ),
        (
            "s3_endpoint",
            StorageSettings(
                kind="s3", s3_endpoint="s3:9000/path", s3_access_key="k", s3_secret_key="s"
            ),
        ),
    ],
)
async def test_open_storage_names_the_missing_s3_setting(
    missing: str, settings: StorageSettings
) -> None:
    with pytest.raises(ValueError, match=missing):
        await open_storage(settings)
