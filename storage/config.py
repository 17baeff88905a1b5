"""Storage settings, and opening the configured plug-in from them."""

from pathlib import Path
from typing import Literal

import msgspec

from batch_gateway.storage.base import ObjectStorage
from batch_gateway.storage.filesystem import FilesystemStorage
from batch_gateway.storage.instrumented import InstrumentedStorage
from batch_gateway.storage.s3 import S3Storage


class StorageSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where file bytes are stored: a directory, or a bucket in an S3-compatible store."""

    kind: Literal["filesystem", "s3"] = "filesystem"
    fs_root: str = "./.batch-gateway/files"
    s3_endpoint: str = ""
    """An http(s) URL without a path, e.g. `http://127.0.0.1:9000`."""
    s3_bucket: str = "batch-gateway"
    s3_access_key: str = ""
    s3_secret_key: str = ""
    s3_region: str = ""
    """Empty to let the client ask the bucket for its region."""
    s3_create_bucket: bool = True
    s3_path_style: bool = True
    """Address the bucket in the path (MinIO, most S3-compatible stores); false for
    virtual-host style (`bucket.host`), which AWS S3 prefers."""


_REQUIRED_S3_SETTINGS = ("s3_endpoint", "s3_bucket", "s3_access_key", "s3_secret_key")


async def open_storage(settings: StorageSettings) -> ObjectStorage:
    """Open the plug-in `settings` name, its operations counted in Prometheus metrics
    (`InstrumentedStorage`); the caller closes it with `close()`.

    Raises ValueError naming the first missing or malformed setting, and `StorageUnavailable`
    if the S3 bucket was to be created but the endpoint does not answer.
    """
    if settings.kind == "filesystem":
        filesystem = FilesystemStorage(Path(settings.fs_root))
        await filesystem.open()
        return InstrumentedStorage(filesystem, "filesystem")
    for name in _REQUIRED_S3_SETTINGS:
        if not getattr(settings, name):
            raise ValueError(f"storage setting {name} is required when kind is 's3'")
    try:
        s3 = S3Storage(
            endpoint=settings.s3_endpoint,
            bucket=settings.s3_bucket,
            access_key=settings.s3_access_key,
            secret_key=settings.s3_secret_key,
            region=settings.s3_region or None,
            create_bucket=settings.s3_create_bucket,
            path_style=settings.s3_path_style,
        )
    except ValueError as error:
        raise ValueError(f"storage setting s3_endpoint is invalid: {error}") from error
    try:
        await s3.open()
    except BaseException:
        await s3.close()
        raise
    return InstrumentedStorage(s3, "s3")
