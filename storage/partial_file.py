"""A temp file that becomes an object only once it is complete and durable."""

import os
import uuid
from pathlib import Path
from typing import BinaryIO, Self

PARTIAL_SUFFIX = ".partial"


class PartialFile:
    """A `.partial` file beside its target, renamed over the target on `commit()`.

    Its methods block on the disk: call them from a worker thread. A crash between `create`
    and `commit` leaves the `.partial` file behind; listings report it so the orphan sweep
    can remove it.
    """

    def __init__(self, target: Path, path: Path, file: BinaryIO) -> None:
        self._target = target
        self._path = path
        self._file = file

    @classmethod
    def create(cls, target: Path) -> Self:
        """Create the temp file (and the target's directory) next to `target`."""
        target.parent.mkdir(parents=True, exist_ok=True)
        path = target.with_name(f"{target.name}.{uuid.uuid4().hex}{PARTIAL_SUFFIX}")
        return cls(target, path, path.open("xb"))

    def write(self, chunk: bytes) -> None:
        self._file.write(chunk)

    def commit(self) -> None:
        """Make the bytes durable, then atomically put them in place of the target."""
        self._file.flush()
        os.fsync(self._file.fileno())
        self._file.close()
        os.replace(self._path, self._target)
        # The rename itself is durable only once the directory entry is on disk.
        directory = os.open(self._target.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def discard(self) -> None:
        """Close and remove the temp file; safe after a failed or completed commit."""
        self._file.close()
        self._path.unlink(missing_ok=True)
