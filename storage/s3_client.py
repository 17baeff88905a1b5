"""The minio client as the S3 plug-in builds it, and the translation of its errors.

Everything minio- and urllib3-specific that is not an operation lives here: parsing the
endpoint URL, the HTTP pool (with timeouts and retries short enough for a readiness probe),
and the one place where their exceptions become the storage error tree.
"""

import os
from urllib.parse import urlsplit

import certifi
import urllib3
import urllib3.exceptions
from minio import Minio
from minio.error import InvalidResponseError, S3Error, ServerError

from batch_gateway.storage.errors import ObjectNotFound, StorageError, StorageUnavailable

# What the plug-in catches around every minio call, and translates with `translate_s3_error`.
S3_CLIENT_ERRORS = (S3Error, ServerError, InvalidResponseError, urllib3.exceptions.HTTPError)

_MISSING_OBJECT_CODES = frozenset({"NoSuchKey", "NoSuchObject"})
# Codes that mean we cannot use the bucket at all, rather than that one request was wrong.
_UNAVAILABLE_CODES = frozenset(
    {
        "NoSuchBucket",
        "AccessDenied",
        "InvalidAccessKeyId",
        "SignatureDoesNotMatch",
        "ServiceUnavailable",
        "SlowDown",
    }
)
_CONNECT_TIMEOUT_SECONDS = 10.0
# Between two reads of one response: no S3 server is silent this long while it works, and a
# frozen one (paused, partitioned away) is noticed within three of these, not minutes later.
_READ_TIMEOUT_SECONDS = 30.0
_MAX_POOLED_CONNECTIONS = 32


def parse_s3_endpoint(endpoint: str) -> tuple[str, bool]:
    """Split `http(s)://host[:port]` into minio's `host[:port]` and whether to use TLS."""
    parts = urlsplit(endpoint)
    if (
        parts.scheme not in {"http", "https"}
        or not parts.hostname
        or parts.username is not None
        or parts.path not in {"", "/"}
        or parts.query
        or parts.fragment
    ):
        raise ValueError(
            f"S3 endpoint {endpoint!r} must be an http(s) URL without a path, "
            "e.g. http://127.0.0.1:9000 or https://s3.amazonaws.com"
        )
    return parts.netloc, parts.scheme == "https"


def open_s3_client(
    endpoint: str, access_key: str, secret_key: str, region: str | None
) -> tuple[Minio, urllib3.PoolManager]:
    """A minio client and the HTTP pool it owns; clear the pool to close the client.

    minio's default pool waits five minutes to connect and retries five times, which would
    make a readiness probe hang on a dead endpoint; ours fails within seconds.
    """
    host, secure = parse_s3_endpoint(endpoint)
    http = urllib3.PoolManager(
        timeout=urllib3.Timeout(connect=_CONNECT_TIMEOUT_SECONDS, read=_READ_TIMEOUT_SECONDS),
        maxsize=_MAX_POOLED_CONNECTIONS,
        cert_reqs="CERT_REQUIRED",
        # The same CA bundle minio would use by default.
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
        retries=urllib3.Retry(total=2, backoff_factor=0.2, status_forcelist=[500, 502, 503, 504]),
    )
    client = Minio(
        host,
        access_key=access_key or None,
        secret_key=secret_key or None,
        secure=secure,
        region=region,
        http_client=http,
    )
    return client, http


def translate_s3_error(error: Exception, key: str) -> StorageError:
    """The storage error for a minio or urllib3 exception raised while handling `key`."""
    if isinstance(error, S3Error):
        if error.code in _MISSING_OBJECT_CODES:
            return ObjectNotFound(key)
        if error.code in _UNAVAILABLE_CODES:
            return StorageUnavailable(f"S3 refused access for key {key!r}: {error.code}")
        return StorageError(f"S3 rejected the request for key {key!r}: {error.code}")
    return StorageUnavailable(
        f"S3 endpoint failed to answer for key {key!r}: {type(error).__name__}"
    )
