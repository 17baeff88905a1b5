"""How fast the validator checks a batch input file: 50,000 chat-completions lines by default.

    .venv/bin/python -m bench.validate_input [--lines N] [--repeat N] [--chunk-bytes N]

The file (~1 KB lines, prompts of 10 to 200 words, one in ten with non-ASCII text) is
generated in memory, seeded so every run sees the same bytes, and fed to `validate_input` in
chunks of the size storage reads hand out: only line splitting and checking are measured, no
disk and no Redis. The issue asks for "well under a second of CPU" for 50,000 lines.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
import time
from collections.abc import AsyncIterator, Sequence

import msgspec

from batch_gateway.processors.validation.input_file import ValidationResult, validate_input
from batch_gateway.storage.base import READ_CHUNK_BYTES
from bench.inputs import CHAT, chat_lines
from bench.memory import PeakGrowth, ProcessMemory

MAX_WORDS = 200  # about 1 KB a line on average
MB = 1e6


class Run(msgspec.Struct, frozen=True):
    wall: float
    cpu: float
    rss_growth: int


def input_chunks(lines: int, chunk_bytes: int) -> list[bytes]:
    """The input file, already cut the way a storage reader hands it out."""
    chunks: list[bytes] = []
    buffer = bytearray()
    for line in itertools.islice(chat_lines(MAX_WORDS), lines):
        buffer += line
        if len(buffer) >= chunk_bytes:
            chunks.append(bytes(buffer[:chunk_bytes]))
            del buffer[:chunk_bytes]
    if buffer:
        chunks.append(bytes(buffer))
    return chunks


async def _stream(chunks: Sequence[bytes]) -> AsyncIterator[bytes]:
    for chunk in chunks:
        yield chunk


async def validate(chunks: Sequence[bytes], lines: int) -> ValidationResult:
    return await validate_input(
        _stream(chunks), endpoint=CHAT, max_requests=max(lines, 1), max_errors=100
    )


async def measure(chunks: Sequence[bytes], lines: int, repeat: int) -> list[Run]:
    runs = []
    for _ in range(repeat):
        with PeakGrowth(os.getpid()) as memory:
            wall, cpu = time.perf_counter(), time.process_time()
            result = await validate(chunks, lines)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        if result.errors or result.total != lines:
            raise SystemExit(f"the generated file did not validate: {result}")
        runs.append(Run(wall, cpu, memory.growth))
    return runs


def main(argv: Sequence[str] | None = None) -> float:
    """Parse `argv`, run, print, and return the median CPU seconds."""
    parser = argparse.ArgumentParser(prog="python -m bench.validate_input", description=__doc__)
    parser.add_argument("--lines", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--chunk-bytes", type=int, default=READ_CHUNK_BYTES)
    args = parser.parse_args(argv)

    chunks = input_chunks(args.lines, args.chunk_bytes)
    size = sum(len(chunk) for chunk in chunks) / MB
    print(
        f"input: {args.lines} lines, {size:.1f} MB ({size * MB / args.lines / 1e3:.2f} KB a "
        f"line), {len(chunks)} chunks of {args.chunk_bytes // 1024} KiB"
    )
    runs = asyncio.run(measure(chunks, args.lines, args.repeat))
    for number, run in enumerate(runs, start=1):
        print(
            f"run {number}: wall {run.wall:.3f} s  cpu {run.cpu:.3f} s  "
            f"{args.lines / run.wall:,.0f} lines/s  {size / run.wall:,.0f} MB/s  "
            f"RSS +{run.rss_growth / MB:.1f} MB"
        )
    wall = statistics.median(run.wall for run in runs)
    cpu = statistics.median(run.cpu for run in runs)
    growth = statistics.median(run.rss_growth for run in runs)
    print(
        f"median of {len(runs)}: lines {args.lines}  MB {size:.1f}  wall {wall:.3f} s  "
        f"cpu {cpu:.3f} s  {args.lines / wall:,.0f} lines/s  RSS growth {growth / MB:.1f} MB"
    )
    print(
        f"peak RSS of the process {ProcessMemory(os.getpid()).peak() / MB:.0f} MB "
        f"(since the last run began; the {size:.0f} MB input is held in memory)"
    )
    return cpu


if __name__ == "__main__":
    main()
