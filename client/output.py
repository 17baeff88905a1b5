"""How the client commands print API objects: an aligned table for a list, `key: value` lines for
one object, or with `--json` the objects as the API sent them.

JSON is the SDK object's `to_dict()`: the fields the response held, under the API's names, so
a script sees what `curl` would, whatever this client knows of them. Times in the human views
are local, to the second; sizes are in binary units.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from openai.types import Batch, FileDeleted, FileObject

_GAP = "  "
# The moments of a batch's life, in the order they happen, as `get` lists them.
_BATCH_TIMES = (
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "cancelling_at",
    "cancelled_at",
    "expires_at",
    "expired_at",
)


def print_json(document: object, out: TextIO) -> None:
    out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    out.flush()


def api_document(item: Batch | FileObject | FileDeleted) -> dict[str, object]:
    return item.to_dict(mode="json")


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], out: TextIO) -> None:
    """Columns as wide as their widest cell, two spaces apart; the last one is not padded, so
    no line ends in blanks."""
    lines = [list(headers), *(list(row) for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(headers) - 1)]
    for line in lines:
        cells = [cell.ljust(width) for cell, width in zip(line, widths, strict=False)]
        out.write(_GAP.join([*cells, line[-1]]).rstrip() + "\n")
    out.flush()


def key_values(pairs: Iterable[tuple[str, str]], out: TextIO) -> None:
    shown = [(key, value) for key, value in pairs if value]
    width = max((len(key) for key, _ in shown), default=0) + 1
    for key, value in shown:
        out.write(f"{key + ':':<{width}} {value}\n")
    out.flush()


def batch_rows(batches: Iterable[Batch]) -> tuple[list[str], list[list[str]]]:
    headers = ["ID", "STATUS", "CREATED", "REQUESTS", "FAILED", "ENDPOINT"]
    rows = []
    for batch in batches:
        counts = batch.request_counts
        done = f"{counts.completed + counts.failed}/{counts.total}" if counts else "-"
        failed = str(counts.failed) if counts else "-"
        rows.append([batch.id, batch.status, when(batch.created_at), done, failed, batch.endpoint])
    return headers, rows


def batch_view(batch: Batch) -> list[tuple[str, str]]:
    pairs = [
        ("id", batch.id),
        ("status", batch.status),
        ("endpoint", batch.endpoint),
        ("model", batch.model or ""),
        ("input_file_id", batch.input_file_id),
        ("completion_window", batch.completion_window),
    ]
    pairs.extend((name, when(getattr(batch, name))) for name in _BATCH_TIMES)
    counts = batch.request_counts
    if counts is not None:
        summary = f"{counts.completed} completed, {counts.failed} failed of {counts.total}"
        pairs.append(("request_counts", summary))
    if batch.usage is not None:
        usage = batch.usage
        pairs.append(("usage", f"{usage.input_tokens} input, {usage.output_tokens} output tokens"))
    pairs += [
        ("output_file_id", batch.output_file_id or ""),
        ("error_file_id", batch.error_file_id or ""),
        ("metadata", ", ".join(f"{k}={v}" for k, v in sorted((batch.metadata or {}).items()))),
    ]
    errors = batch.errors.data if batch.errors is not None else None
    for error in errors or ():
        where = f" (line {error.line})" if error.line is not None else ""
        pairs.append(("error", f"{error.code}{where}: {error.message}"))
    return pairs


def file_rows(files: Iterable[FileObject]) -> tuple[list[str], list[list[str]]]:
    headers = ["ID", "PURPOSE", "SIZE", "CREATED", "EXPIRES", "FILENAME"]
    rows = [
        [
            file.id,
            file.purpose,
            size(file.bytes),
            when(file.created_at),
            when(file.expires_at) or "never",
            file.filename,
        ]
        for file in files
    ]
    return headers, rows


def file_view(file: FileObject) -> list[tuple[str, str]]:
    return [
        ("id", file.id),
        ("filename", file.filename),
        ("purpose", file.purpose),
        ("bytes", f"{file.bytes} ({size(file.bytes)})" if file.bytes >= 1024 else str(file.bytes)),
        ("created_at", when(file.created_at)),
        ("expires_at", when(file.expires_at) or "never"),
    ]


def when(timestamp: Any) -> str:
    """A Unix time as local date and time; nothing for a moment that has not come."""
    if not isinstance(timestamp, int | float):
        return ""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def size(count: int) -> str:
    units = ("B", "KiB", "MiB", "GiB", "TiB")
    value, index = float(count), 0
    while value >= 1024 and index < len(units) - 1:
        value, index = value / 1024, index + 1
    return f"{count} B" if index == 0 else f"{value:.1f} {units[index]}"
