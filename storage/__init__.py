"""Object storage for file bytes: one small streaming interface, two plug-ins.

`open_storage(StorageSettings(...))` returns an `ObjectStorage` backed either by a directory
(`FilesystemStorage`, for a shared volume) or by a bucket in an S3-compatible store
(`S3Storage`, for MinIO, AWS S3, Ceph). Keys come from `file_object_key(tenant, file_id)`,
never from user-supplied names; `limit_size` refuses oversized uploads while they stream.
"""

from batch_gateway.storage.base import ObjectReader, ObjectStorage, StoredObject
from batch_gateway.storage.config import StorageSettings, open_storage
from batch_gateway.storage.errors import (
    ObjectNotFound,
    ObjectTooLarge,
    StorageError,
    StorageUnavailable,
)
from batch_gateway.storage.filesystem import FilesystemStorage
from batch_gateway.storage.keys import file_object_key, result_chunk_key, result_chunk_prefix
from batch_gateway.storage.limits import limit_size
from batch_gateway.storage.s3 import S3Storage

__all__ = [
    "FilesystemStorage",
    "ObjectNotFound",
    "ObjectReader",
    "ObjectStorage",
    "ObjectTooLarge",
    "S3Storage",
    "StorageError",
    "StorageSettings",
    "StorageUnavailable",
    "StoredObject",
    "file_object_key",
    "limit_size",
    "open_storage",
    "result_chunk_key",
    "result_chunk_prefix",
]
