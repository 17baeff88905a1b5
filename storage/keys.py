"""Object keys: derived from tenant and object ids, checked before any adapter uses them.

Keys are `/`-separated relative paths. They are never built from user-supplied file names, and
every adapter refuses keys that could name something outside its namespace (absolute paths,
`..` segments, NUL bytes), so a hostile id cannot reach another tenant's object or the host's
files.
"""

import hashlib
import re

_FILE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_TENANT_DIGEST_CHARS = 32
# S3's own limit on key length, in UTF-8 bytes; the filesystem adapter keeps to it too.
_MAX_KEY_BYTES = 1024
_FORBIDDEN_CHARS = ("\x00", "\\")
_FORBIDDEN_SEGMENTS = frozenset({"", ".", ".."})


def file_object_key(tenant: str, file_id: str) -> str:
    """The key under which the bytes of `tenant`'s file `file_id` are stored.

    The tenant is hashed rather than embedded, so any tenant string (slashes, dots, NUL) yields
    one fixed-length, path-safe segment and tenants cannot share a directory by accident.
    """
    if not tenant:
        raise ValueError("tenant must not be empty")
    if _FILE_ID.fullmatch(file_id) is None:
        raise ValueError(f"file id {file_id!r} must match [A-Za-z0-9_-]{{1,64}}")
    tenant_digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:_TENANT_DIGEST_CHARS]
    return f"files/{tenant_digest}/{file_id}"


def result_chunk_key(tenant: str, batch_id: str, chunk: str, kind: str) -> str:
    """The key of one committed chunk of a batch's results (`kind` "output" or "errors").

    `chunk` names the claim that wrote it as well as its number (`3-17`), so a processor that
    lost its job and writes late can never overwrite a chunk its successor committed.
    """
    if _FILE_ID.fullmatch(batch_id) is None or _FILE_ID.fullmatch(chunk) is None:
        raise ValueError(f"bad batch id or chunk name: {batch_id!r}, {chunk!r}")
    if kind not in ("output", "errors"):
        raise ValueError(f"bad chunk kind {kind!r}")
    return f"{result_chunk_prefix(tenant, batch_id)}{chunk}.{kind}.jsonl"


def result_chunk_prefix(tenant: str, batch_id: str) -> str:
    """Where every chunk of a batch lies (what gc's orphan sweep lists)."""
    if not tenant:
        raise ValueError("tenant must not be empty")
    tenant_digest = hashlib.sha256(tenant.encode("utf-8")).hexdigest()[:_TENANT_DIGEST_CHARS]
    return f"results/{tenant_digest}/{batch_id}/"


def check_object_key(key: str) -> str:
    """Return `key` unchanged if it is a safe relative key, else raise ValueError."""
    if not key:
        raise ValueError("object key must not be empty")
    _check_characters(key)
    if any(segment in _FORBIDDEN_SEGMENTS for segment in key.split("/")):
        raise ValueError(f"object key {key!r} has an empty, '.' or '..' segment")
    return key


def check_key_prefix(prefix: str) -> str:
    """Return `prefix` unchanged if every key starting with it could be safe, else raise.

    A prefix may be empty, end in `/`, or end in part of a segment (`files/ab`).
    """
    if not prefix:
        return prefix
    _check_characters(prefix)
    # The last segment is matched as a name prefix, never followed as a directory, so it may
    # be anything (empty after a trailing slash, or `..` as the start of `..x`).
    segments = prefix.split("/")
    if any(segment in _FORBIDDEN_SEGMENTS for segment in segments[:-1]):
        raise ValueError(f"key prefix {prefix!r} has an empty, '.' or '..' segment")
    return prefix


def _check_characters(key: str) -> None:
    if any(char in key for char in _FORBIDDEN_CHARS):
        raise ValueError(f"object key {key!r} contains a NUL byte or a backslash")
    if len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise ValueError(f"object key is longer than {_MAX_KEY_BYTES} bytes")
