"""The S3 plug-in: objects in one bucket of an S3-compatible store (MinIO, AWS S3, Ceph).

It drives the synchronous minio client from worker threads. Uploads stream through a
`ChunkPipe` into minio's multipart upload, so an object of any size needs one part of memory;
minio aborts the multipart upload when reading the next part fails, which is how a failed or
cancelled write leaves nothing behind.
"""

from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from functools import partial
from typing import BinaryIO, TypeVar, cast

import anyio
import anyio.to_thread
import urllib3
from minio import Minio
from minio.datatypes import Object
from minio.error import S3Error

from batch_gateway.storage.base import READ_CHUNK_BYTES, ObjectReader, StoredObject
from batch_gateway.storage.chunk_pipe import ChunkPipe, UploadAbandoned
from batch_gateway.storage.errors import ObjectNotFound, StorageError, StorageUnavailable
from batch_gateway.storage.keys import check_key_prefix, check_object_key
from batch_gateway.storage.s3_client import (
    S3_CLIENT_ERRORS,
    open_s3_client,
    parse_s3_endpoint,
    translate_s3_error,
)

_T = TypeVar("_T")

MIN_PART_BYTES = 5 * 1024 * 1024
DEFAULT_PART_BYTES = 16 * 1024 * 1024
# Chunks buffered between the event loop and the uploading thread (each ~64 KiB).
_PIPE_BUFFERED_CHUNKS = 8
_LIST_BATCH_SIZE = 1000
# Uploads hold a worker thread for their whole duration; give them their own limiter so that
# many slow uploads cannot starve every other thread-backed call in the process.
_DEFAULT_MAX_CONCURRENT_UPLOADS = 32


class S3Storage:
    """Objects stored in `bucket` at an S3-compatible `endpoint`."""

    def __init__(
        self,
        *,
        endpoint: str,
        bucket: str,
        access_key: str,
        secret_key: str,
        region: str | None = None,
        create_bucket: bool = False,
        path_style: bool = True,
        part_size: int = DEFAULT_PART_BYTES,
        max_concurrent_uploads: int = _DEFAULT_MAX_CONCURRENT_UPLOADS,
    ) -> None:
        parse_s3_endpoint(endpoint)  # fail at construction on a malformed URL
        if part_size < MIN_PART_BYTES:
            raise ValueError(f"S3 part size must be at least {MIN_PART_BYTES} bytes")
        self._endpoint = endpoint
        self._bucket = bucket
        self._access_key = access_key
        self._secret_key = secret_key
        self._region = region or None
        self._create_bucket = create_bucket
        self._path_style = path_style
        self._part_size = part_size
        self._max_concurrent_uploads = max_concurrent_uploads
        self._client: Minio | None = None
        self._http: urllib3.PoolManager | None = None
        self._upload_limiter: anyio.CapacityLimiter | None = None

    async def open(self) -> None:
        """Build the client and, if configured to, create the bucket when it is missing."""
        self._client, self._http = open_s3_client(
            self._endpoint, self._access_key, self._secret_key, self._region
        )
        # minio leaves these two untyped.
        if self._path_style:
            self._client.disable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
        else:
            self._client.enable_virtual_style_endpoint()  # type: ignore[no-untyped-call]
        self._upload_limiter = anyio.CapacityLimiter(self._max_concurrent_uploads)
        if self._create_bucket:
            await self._call("", partial(_ensure_bucket, self._client, self._bucket, self._region))

    async def close(self) -> None:
        if self._http is not None:
            self._http.clear()
        self._client = self._http = self._upload_limiter = None

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        client = self._opened_client()
        check_object_key(key)
        pipe = ChunkPipe(_PIPE_BUFFERED_CHUNKS)
        upload_error: Exception | None = None
        feed_error: Exception | None = None

        async def upload() -> None:
            nonlocal upload_error
            try:
                await anyio.to_thread.run_sync(
                    partial(self._put_object, client, key, pipe), limiter=self._upload_limiter
                )
            except Exception as error:
                upload_error = error
            finally:
                pipe.close_reader()

        # Both sides keep their exceptions instead of raising them into the task group, which
        # would wrap them in an ExceptionGroup; cancellation still propagates, after the
        # uploading thread has seen the abandoned pipe and aborted the upload.
        written = 0
        async with anyio.create_task_group() as task_group:
            task_group.start_soon(upload)
            try:
                written = await pipe.feed(chunks)
            except Exception as error:
                feed_error = error
        if feed_error is not None and not isinstance(feed_error, anyio.BrokenResourceError):
            raise feed_error
        if upload_error is not None and not isinstance(upload_error, UploadAbandoned):
            if isinstance(upload_error, S3_CLIENT_ERRORS):
                raise translate_s3_error(upload_error, key) from upload_error
            raise StorageError(f"upload of key {key!r} failed") from upload_error
        return written

    async def read(self, key: str, offset: int = 0) -> ObjectReader:
        client = self._opened_client()
        check_object_key(key)
        # A ranged GET from `offset`; S3 answers a range past the end with an error, not an
        # empty body, and nothing is read there anyway.
        get = partial(client.get_object, self._bucket, key, offset=offset)
        response = await self._call(key, get)
        chunks = _ResponseChunks(response, key)
        length = response.headers.get("Content-Length")
        if length is None:
            await chunks.close()
            raise StorageError(f"S3 sent no Content-Length for key {key!r}")
        return ObjectReader(int(length), chunks)

    async def delete(self, key: str) -> bool:
        client = self._opened_client()
        # S3 deletes are silent about missing keys; ask first to report whether one existed.
        if not await self.exists(key):
            return False
        await self._call(key, partial(client.remove_object, self._bucket, key))
        return True

    async def exists(self, key: str) -> bool:
        client = self._opened_client()
        check_object_key(key)
        try:
            await self._call(key, partial(client.stat_object, self._bucket, key))
        except ObjectNotFound:
            return False
        return True

    async def check(self) -> None:
        client = self._opened_client()
        try:
            bucket_exists = await self._call("", partial(client.bucket_exists, self._bucket))
        except StorageError as error:
            raise StorageUnavailable(f"S3 bucket {self._bucket!r} is unreachable") from error
        if not bucket_exists:
            raise StorageUnavailable(f"S3 bucket {self._bucket!r} does not exist")

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        client = self._opened_client()
        check_key_prefix(prefix)
        # A lazy generator: each batch below pages through the listing from a worker thread.
        listing: Iterator[Object] = client.list_objects(self._bucket, prefix=prefix, recursive=True)
        while batch := await self._call(prefix, partial(_next_batch, listing)):
            for stored in batch:
                yield stored

    def _put_object(self, client: Minio, key: str, pipe: ChunkPipe) -> None:
        # One part at a time: parallel part uploads would multiply the memory per upload, and
        # a part still in flight when minio aborts could outlive the abort.
        client.put_object(
            self._bucket,
            key,
            cast(BinaryIO, pipe),  # minio only calls read(size)
            length=-1,
            part_size=self._part_size,
            num_parallel_uploads=1,
        )

    async def _call(self, key: str, call: Callable[[], _T]) -> _T:
        try:
            return await anyio.to_thread.run_sync(call)
        except S3_CLIENT_ERRORS as error:
            raise translate_s3_error(error, key) from error

    def _opened_client(self) -> Minio:
        if self._client is None:
            raise RuntimeError("S3Storage used before open()")
        return self._client


class _ResponseChunks:
    """An S3 GET response body read in fixed-size chunks from a worker thread."""

    def __init__(self, response: urllib3.BaseHTTPResponse, key: str) -> None:
        self._response = response
        self._key = key

    async def read_chunk(self) -> bytes:
        try:
            chunk: bytes = await anyio.to_thread.run_sync(self._response.read, READ_CHUNK_BYTES)
        except S3_CLIENT_ERRORS as error:
            raise translate_s3_error(error, self._key) from error
        return chunk

    async def close(self) -> None:
        self._response.close()
        self._response.release_conn()


def _ensure_bucket(client: Minio, bucket: str, region: str | None) -> None:
    if client.bucket_exists(bucket):
        return
    try:
        client.make_bucket(bucket, location=region)
    except S3Error as error:
        # Another instance created it between our check and our request.
        if error.code != "BucketAlreadyOwnedByYou":
            raise


def _next_batch(listing: Iterator[Object]) -> tuple[StoredObject, ...]:
    batch: list[StoredObject] = []
    for listed in listing:
        if listed.is_dir or listed.object_name is None:
            continue
        modified_at = listed.last_modified.timestamp() if listed.last_modified else 0.0
        batch.append(
            StoredObject(key=listed.object_name, size=listed.size or 0, modified_at=modified_at)
        )
        if len(batch) >= _LIST_BATCH_SIZE:
            break
    return tuple(batch)
