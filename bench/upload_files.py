"""Upload throughput through the official OpenAI SDK: one 100 MB batch file, 200 small ones.

    .venv/bin/python -m bench.upload_files [--base-url URL [--server-pid PID]] [--big-mb N]
                                           [--small-files N] [--small-lines N] [--concurrent N]

Without `--base-url` it starts a stack (`tests.harness.live_stack.LiveStack`: API server,
projector and processor in one process) in a child process, on this machine's Redis and
PostgreSQL under a fresh key prefix and schema, with files in a temporary folder, and removes
all of it afterwards. It prints MB/s for the big upload, files/s for the small ones (one at a
time, each waiting for read-your-writes as a client does), and how far the server process's
resident memory rose during the big upload: uploads stream to storage, so that should stay far
below the file's size. With `--base-url`, memory is measured only if `--server-pid` names the
API server's process on this machine. `--concurrent 10` then uploads the big file ten times at
once and prints the memory the server grew by while they streamed in.
"""

from __future__ import annotations

import argparse
import asyncio
import concurrent.futures
import contextlib
import multiprocessing
import shutil
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from multiprocessing.connection import Connection
from pathlib import Path

import msgspec
import redis
from openai import OpenAI
from openai.types import FileObject

from batch_gateway.gateway.settings import ApiServerSettings
from batch_gateway.projections.database import drop_schema
from batch_gateway.secret_store import new_secrets_key
from batch_gateway.storage import StorageSettings
from bench.inputs import chat_lines
from bench.live_system import services
from bench.memory import PeakGrowth
from tests.harness.live_stack import LiveStack

MB = 1e6
BIG_LINE_WORDS = 480  # about 2 KB a line: 100 MB stays within the 50,000-line limit
SMALL_LINE_WORDS = 200
START_TIMEOUT_SECONDS = 60.0


def write_big_file(path: Path, size: int) -> int:
    """Write at least `size` bytes of whole JSONL lines to `path`; returns the line count."""
    written = lines = 0
    # Past 100 MB, lines of ~4.7 KB keep the file within the 50,000-line limit.
    words = BIG_LINE_WORDS if size <= 100 * MB else 1200
    with path.open("wb") as file:
        for line in chat_lines(words):
            if written >= size:
                break
            file.write(line)
            written += len(line)
            lines += 1
    return lines


def small_file(lines: int, seed: int) -> bytes:
    source = chat_lines(SMALL_LINE_WORDS, seed=seed)
    return b"".join(next(source) for _ in range(lines))


def _serve_stack(settings: ApiServerSettings, control: Connection) -> None:
    """The child process: run a stack until the parent says stop (or goes away)."""
    with LiveStack(settings) as stack:
        control.send(stack.base_url)
        with contextlib.suppress(EOFError):
            control.recv()


@contextlib.contextmanager
def stack_in_child(redis_url: str, postgres_url: str) -> Iterator[tuple[str, int]]:
    """A stack in a child process on a namespace of its own; yields its URL and pid."""
    files = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    settings = ApiServerSettings(
        redis_url=redis_url,
        postgres_url=postgres_url,
        postgres_schema=f"bench_{uuid.uuid4().hex[:16]}",
        key_prefix=f"bench-{uuid.uuid4().hex[:12]}",
        storage=StorageSettings(kind="filesystem", fs_root=str(files)),
        secrets_key=new_secrets_key(),
    )
    context = multiprocessing.get_context("spawn")
    control, child_end = context.Pipe()
    child = context.Process(target=_serve_stack, args=(settings, child_end), daemon=True)
    child.start()
    try:
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while not control.poll(0.1):
            if not child.is_alive() or time.monotonic() > deadline:
                raise SystemExit("the stack did not start; see its output above")
        assert child.pid is not None
        yield control.recv(), child.pid
    finally:
        with contextlib.suppress(BrokenPipeError):
            control.send("stop")
        child.join(30)
        if child.is_alive():
            child.terminate()
            child.join(10)
        _remove_namespace(settings)
        shutil.rmtree(files, ignore_errors=True)


def _remove_namespace(settings: ApiServerSettings) -> None:
    asyncio.run(drop_schema(settings.postgres_url, settings.postgres_schema))
    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(match=f"{{{settings.key_prefix}}}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class UploadFigures(msgspec.Struct, frozen=True):
    """What one run measured (bench/performance.py collects these)."""

    mb_per_second: float
    """The big upload alone."""
    growth: int | None
    """How far the server's RSS rose above its size before the big upload, at its peak."""
    concurrent: int
    concurrent_growth: int | None
    """The same while `concurrent` uploads of the big file stream in at once."""


def _upload(client: OpenAI, path: Path, name: str) -> FileObject:
    with path.open("rb") as file:  # a file object, not bytes or a path: the SDK streams it
        return client.files.create(file=(name, file), purpose="batch")


def run(
    client: OpenAI, server_pid: int | None, args: argparse.Namespace, work: Path
) -> UploadFigures:
    big = work / "big.jsonl"
    lines = write_big_file(big, int(args.big_mb * MB))
    size = big.stat().st_size
    uploaded: list[str] = []
    try:
        with contextlib.ExitStack() as watching:
            growth = watching.enter_context(PeakGrowth(server_pid)) if server_pid else None
            started = time.perf_counter()
            created = _upload(client, big, "big.jsonl")
            seconds = time.perf_counter() - started
        uploaded.append(created.id)
        if created.bytes != size:
            raise SystemExit(f"the server stored {created.bytes} bytes, not {size}")
        memory = (
            f"server RSS +{growth.growth / MB:.1f} MB at its peak"
            if growth is not None
            else "server RSS not measured (give --server-pid)"
        )
        print(
            f"big file: {size / MB:.1f} MB, {lines} lines in {seconds:.2f} s = "
            f"{size / MB / seconds:.1f} MB/s; {memory}"
        )
        seconds_alone, growth_alone = seconds, growth.growth if growth is not None else None
        concurrent_growth = None
        if args.concurrent > 1:
            with contextlib.ExitStack() as watching:
                watched = watching.enter_context(PeakGrowth(server_pid)) if server_pid else None
                started = time.perf_counter()
                with concurrent.futures.ThreadPoolExecutor(args.concurrent) as pool:
                    names = [f"big-{number}.jsonl" for number in range(args.concurrent)]
                    uploaded += (
                        file.id for file in pool.map(lambda n: _upload(client, big, n), names)
                    )
                seconds = time.perf_counter() - started
            concurrent_growth = watched.growth if watched is not None else None
            print(
                f"{args.concurrent} uploads of it at once: {seconds:.2f} s = "
                f"{args.concurrent * size / MB / seconds:.1f} MB/s in all; server RSS "
                + (f"+{watched.growth / MB:.1f} MB at its peak" if watched else "not measured")
            )
        smalls = [small_file(args.small_lines, seed) for seed in range(args.small_files)]
        started = time.perf_counter()
        for number, data in enumerate(smalls):
            small = client.files.create(file=(f"small-{number}.jsonl", data), purpose="batch")
            uploaded.append(small.id)
        seconds = time.perf_counter() - started
        average = sum(map(len, smalls)) / len(smalls) / 1e3
        print(
            f"small files: {len(smalls)} of {args.small_lines} lines (~{average:.0f} KB) in "
            f"{seconds:.2f} s = {len(smalls) / seconds:.1f} files/s "
            f"({seconds / len(smalls) * 1e3:.1f} ms each)"
        )
    finally:
        for file_id in uploaded:
            client.files.delete(file_id)
    return UploadFigures(
        size / MB / seconds_alone, growth_alone, args.concurrent, concurrent_growth
    )


def main(argv: Sequence[str] | None = None) -> UploadFigures:
    """Parse `argv`, run once, print, and return the figures."""
    parser = argparse.ArgumentParser(prog="python -m bench.upload_files", description=__doc__)
    parser.add_argument("--base-url", help="an API server to upload to, e.g. http://host:8000")
    parser.add_argument("--api-key", default="bench", help="sent as the Bearer key")
    parser.add_argument("--server-pid", type=int, help="the pid of the --base-url API server")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--postgres-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--embedded", action="store_true", help="start Redis and PostgreSQL of our own"
    )
    parser.add_argument("--big-mb", type=float, default=100.0)
    parser.add_argument("--small-files", type=int, default=200)
    parser.add_argument("--small-lines", type=int, default=10)
    parser.add_argument(
        "--concurrent", type=int, default=1, help="then upload the big file this many times at once"
    )
    args = parser.parse_args(argv)

    with contextlib.ExitStack() as stack:
        work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-input-")))
        if args.base_url:
            base_url, server_pid = args.base_url.rstrip("/"), args.server_pid
        else:
            backing = stack.enter_context(
                services(work, args.redis_url, args.postgres_url, args.embedded)
            )
            base_url, server_pid = stack.enter_context(
                stack_in_child(backing.redis_url, backing.postgres_url)
            )
        client = stack.enter_context(
            OpenAI(
                base_url=f"{base_url}/v1",
                api_key=args.api_key,
                max_retries=0,
                timeout=600.0,
                _strict_response_validation=True,
            )
        )
        print(f"uploading to {base_url}")
        return run(client, server_pid, args, work)


if __name__ == "__main__":
    main()
