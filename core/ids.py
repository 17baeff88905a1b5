"""Object ids in OpenAI's formats: `file-...`, `batch_...`."""

from __future__ import annotations

import re
import secrets

FILE_ID = re.compile(r"^file-[0-9a-f]{24}$")


def new_file_id() -> str:
    return f"file-{secrets.token_hex(12)}"


def is_file_id(value: str) -> bool:
    return FILE_ID.match(value) is not None
