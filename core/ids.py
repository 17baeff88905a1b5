"""Object ids in OpenAI's formats: `file-...`, `batch_...`; and the names of our processes."""

from __future__ import annotations

import os
import re
import secrets
import socket

FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")
BATCH_ID = re.compile(r"^batch_[0-9a-f]{32}$")


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def new_batch_id() -> str:
    return f"batch_{secrets.token_hex(16)}"


def is_file_id(value: str) -> bool:
    # fullmatch: `$` alone would also take a trailing newline.
    return FILE_ID.fullmatch(value) is not None


def is_batch_id(value: str) -> bool:
    return BATCH_ID.fullmatch(value) is not None


def instance_name() -> str:
    """A name for this process among its peers (gc leases, projector partition claims)."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
