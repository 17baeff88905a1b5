"""The filesystem plug-in: objects are files under one root directory (a shared volume).

A write streams into a `.partial` temp file beside its target, fsyncs it and renames it over
the target, so readers see either the old object or the whole new one, never a torn file. All
disk I/O runs in worker threads; the event loop never waits on the disk.
"""

import os
import stat
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from typing import BinaryIO

import anyio
import anyio.to_thread

from batch_gateway.storage.base import READ_CHUNK_BYTES, ObjectReader, StoredObject
from batch_gateway.storage.errors import ObjectNotFound, StorageError, StorageUnavailable
from batch_gateway.storage.keys import check_key_prefix, check_object_key
from batch_gateway.storage.partial_file import PARTIAL_SUFFIX, PartialFile


class FilesystemStorage:
    """Objects stored as files under `root`; keys are paths relative to it."""

    def __init__(self, root: Path) -> None:
        self._configured_root = root
        self._root: Path | None = None

    async def open(self) -> None:
        """Create the root directory if needed and pin its resolved path."""
        with _translated_os_errors("", reading=False):
            self._root = await anyio.to_thread.run_sync(_create_root, self._configured_root)

    async def close(self) -> None:
        """Nothing to release: files are opened and closed per operation."""

    async def write(self, key: str, chunks: AsyncIterable[bytes]) -> int:
        root = self._opened_root()
        if key.endswith(PARTIAL_SUFFIX):
            raise ValueError(f"object key {key!r} must not end in {PARTIAL_SUFFIX!r}")
        with _translated_os_errors(key, reading=False):
            target = await anyio.to_thread.run_sync(_contained_path, root, key)
            partial_file = await anyio.to_thread.run_sync(PartialFile.create, target)
        written = 0
        try:
            # The iterator is consumed outside the translation so that its own exceptions,
            # even an OSError, reach the caller unchanged.
            async for chunk in chunks:
                with _translated_os_errors(key, reading=False):
                    await anyio.to_thread.run_sync(partial_file.write, chunk)
                written += len(chunk)
            with _translated_os_errors(key, reading=False):
                await anyio.to_thread.run_sync(partial_file.commit)
        except BaseException:
            # Shielded so that a cancelled write still removes its temp file.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(partial_file.discard)
            raise
        return written

    async def read(self, key: str, offset: int = 0) -> ObjectReader:
        root = self._opened_root()
        with _translated_os_errors(key, reading=True):
            file, size = await anyio.to_thread.run_sync(_open_for_reading, root, key, offset)
        return ObjectReader(size, _FileChunks(file, key))

    async def delete(self, key: str) -> bool:
        root = self._opened_root()
        with _translated_os_errors(key, reading=False):
            return await anyio.to_thread.run_sync(_unlink, root, key)

    async def exists(self, key: str) -> bool:
        root = self._opened_root()
        with _translated_os_errors(key, reading=False):
            path = await anyio.to_thread.run_sync(_contained_path, root, key)
            return await anyio.to_thread.run_sync(path.is_file)

    async def check(self) -> None:
        root = self._opened_root()
        if not await anyio.to_thread.run_sync(_is_writable_directory, root):
            raise StorageUnavailable(f"storage root {str(root)!r} is not a writable directory")

    async def list(self, prefix: str) -> AsyncIterator[StoredObject]:
        root = self._opened_root()
        check_key_prefix(prefix)
        directory_key = prefix.rpartition("/")[0]
        with _translated_os_errors(prefix, reading=False):
            start = await anyio.to_thread.run_sync(_contained_directory, root, directory_key)
        pending = [] if start is None else [start]
        while pending:
            directory = pending.pop()
            with _translated_os_errors(prefix, reading=False):
                scan = await anyio.to_thread.run_sync(partial(_scan, root, directory))
            files, subdirectories = scan
            for stored in files:
                if stored.key.startswith(prefix):
                    yield stored
            pending.extend(
                path
                for path, subdirectory_key in subdirectories
                if (subdirectory_key + "/").startswith(prefix)
                or prefix.startswith(subdirectory_key + "/")
            )

    def _opened_root(self) -> Path:
        if self._root is None:
            raise RuntimeError("FilesystemStorage used before open()")
        return self._root


class _FileChunks:
    """An open file read in fixed-size chunks from a worker thread."""

    def __init__(self, file: BinaryIO, key: str) -> None:
        self._file = file
        self._key = key

    async def read_chunk(self) -> bytes:
        with _translated_os_errors(self._key, reading=True):
            return await anyio.to_thread.run_sync(self._file.read, READ_CHUNK_BYTES)

    async def close(self) -> None:
        await anyio.to_thread.run_sync(self._file.close)


@contextmanager
def _translated_os_errors(key: str, *, reading: bool) -> Iterator[None]:
    """Turn OSErrors from our own disk calls into the storage error tree."""
    try:
        yield
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
        if reading:
            raise ObjectNotFound(key) from exc
        raise StorageError(f"filesystem error for key {key!r}: {exc.strerror}") from exc
    except OSError as exc:
        raise StorageError(f"filesystem error for key {key!r}: {exc.strerror}") from exc


def _create_root(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return root.resolve(strict=True)


def _contained_path(root: Path, key: str) -> Path:
    """The path of `key` under `root`, refusing keys that resolve outside it.

    `check_object_key` already rules out absolute keys and `..`; resolving as well catches a
    symlink inside the root that points elsewhere.
    """
    resolved = (root / check_object_key(key)).resolve()
    if not resolved.is_relative_to(root) or resolved == root:
        raise ValueError(f"object key {key!r} resolves outside the storage root")
    return resolved


def _contained_directory(root: Path, directory_key: str) -> Path | None:
    if not directory_key:
        return root
    directory = _contained_path(root, directory_key)
    return directory if directory.is_dir() else None


def _open_for_reading(root: Path, key: str, offset: int) -> tuple[BinaryIO, int]:
    file = _contained_path(root, key).open("rb")
    try:
        status = os.fstat(file.fileno())
        if not stat.S_ISREG(status.st_mode):
            raise IsADirectoryError(f"{key!r} is not a regular file")
        start = min(offset, status.st_size)
        file.seek(start)
    except BaseException:
        file.close()
        raise
    return file, status.st_size - start


def _unlink(root: Path, key: str) -> bool:
    try:
        _contained_path(root, key).unlink()
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return False
    return True


def _is_writable_directory(root: Path) -> bool:
    return root.is_dir() and os.access(root, os.W_OK | os.X_OK)


def _scan(
    root: Path, directory: Path
) -> tuple[tuple[StoredObject, ...], tuple[tuple[Path, str], ...]]:
    """The regular files and the subdirectories of one directory, with their keys.

    Symlinks are neither reported nor followed, so a listing cannot leave the root.
    """
    files: list[StoredObject] = []
    subdirectories: list[tuple[Path, str]] = []
    try:
        entries = list(os.scandir(directory))
    except (FileNotFoundError, NotADirectoryError):
        # Removed while we walked: it holds nothing any more.
        return (), ()
    for entry in entries:
        entry_key = Path(entry.path).relative_to(root).as_posix()
        if entry.is_dir(follow_symlinks=False):
            subdirectories.append((Path(entry.path), entry_key))
        elif entry.is_file(follow_symlinks=False):
            try:
                status = entry.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue
            files.append(
                StoredObject(key=entry_key, size=status.st_size, modified_at=status.st_mtime)
            )
    return tuple(files), tuple(subdirectories)
