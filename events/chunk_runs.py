"""The names of a batch's committed result chunks, held as runs rather than one by one.

A processor commits a chunk about once a second and names it `<claim>-<n>`, n counting up from
1 within its claim. A batch that runs for hours has tens of thousands of chunks; a state that
listed each name would copy that list on every `batch.progress` it folds (the state is
immutable), so folding a long batch would cost time in the square of its length, and each of
its snapshots would grow with it. As runs (`3-1` to `3-5000` is one run), a fold copies a list
as long as the batch has had claims, and a snapshot stays small (ADR 0027).
"""

from __future__ import annotations

from collections.abc import Iterator

import msgspec


class ChunkRun(msgspec.Struct, frozen=True, array_like=True):
    """Chunks `<prefix>-<first>` to `<prefix>-<last>`; a name of another form is a run of
    its own (`first` = -1) and stands for itself."""

    prefix: str
    first: int
    last: int


def with_chunk(runs: list[ChunkRun], name: str) -> list[ChunkRun]:
    """`runs` followed by the chunk `name` (a new list: states are never changed)."""
    prefix, separator, digits = name.rpartition("-")
    if not (separator and digits.isdigit() and str(int(digits)) == digits):
        return [*runs, ChunkRun(name, -1, -1)]
    number = int(digits)
    if runs and runs[-1].prefix == prefix and runs[-1].first >= 0 and runs[-1].last + 1 == number:
        return [*runs[:-1], ChunkRun(prefix, runs[-1].first, number)]
    return [*runs, ChunkRun(prefix, number, number)]


def chunk_names(runs: list[ChunkRun]) -> Iterator[str]:
    """Every chunk's name, in commit order."""
    for run in runs:
        if run.first < 0:
            yield run.prefix
        else:
            for number in range(run.first, run.last + 1):
                yield f"{run.prefix}-{number}"
