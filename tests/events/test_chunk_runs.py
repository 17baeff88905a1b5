"""Chunk names held as runs: whatever names are committed in whatever order, the runs give them
back in that order, and the usual `<claim>-<n>` sequences stay one run per claim."""

from __future__ import annotations

from functools import reduce

from hypothesis import given
from hypothesis import strategies as st

from batch_gateway.events.chunk_runs import ChunkRun, chunk_names, with_chunk

_names = st.one_of(
    st.builds(lambda c, n: f"{c}-{n}", st.integers(1, 3), st.integers(0, 12)),
    st.sampled_from(["1-01", "x", "-", "2-", "a-b-3", "-7", "1--2"]),
)


def _runs(names: list[str]) -> list[ChunkRun]:
    return reduce(with_chunk, names, list[ChunkRun]())


@given(st.lists(_names, max_size=40))
def test_the_runs_give_back_every_name_in_commit_order(names: list[str]) -> None:
    assert list(chunk_names(_runs(names))) == names


def test_a_processors_consecutive_chunks_are_one_run_per_claim() -> None:
    names = [f"1-{n}" for n in range(1, 5001)] + [f"2-{n}" for n in range(1, 3)]
    assert _runs(names) == [ChunkRun("1", 1, 5000), ChunkRun("2", 1, 2)]
