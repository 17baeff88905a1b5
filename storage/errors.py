"""The storage error tree.

Adapters translate their backend's exceptions (minio, urllib3, the OS) into these once, at
their boundary, so callers never need to know which plug-in is configured.
"""


class StorageError(Exception):
    """Base of every error the storage package raises about the backend or an object."""


class ObjectNotFound(StorageError):
    """No object is stored under the key."""

    def __init__(self, key: str) -> None:
        super().__init__(f"no object stored under key {key!r}")
        self.key = key


class StorageUnavailable(StorageError):
    """The backend does not answer, or answers that it cannot serve us (no bucket, no root)."""


class ObjectTooLarge(StorageError):
    """A stream passed the size limit while it was being stored."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"object is larger than the limit of {limit} bytes")
        self.limit = limit
