"""`batch-gateway up`: every component on this machine, embedded servers where no URL is given.

The components run as child processes (`batch-gateway apiserver`, `... projector`), exactly
as in production, configured by the environment written to `DATA_DIR/stack.env`; the same
file lets another terminal join the stack with one more component.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import os
import signal
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from batch_gateway.secret_store import new_secrets_key
from batch_gateway.settings import CommonSettings, to_environment
from batch_gateway.stack.components import COMPONENTS, ComponentSet
from batch_gateway.stack.postgres_server import EmbeddedPostgres
from batch_gateway.stack.redis_server import EmbeddedRedis, remembered_port
from batch_gateway.storage import StorageSettings


def add_up_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="API port (default 8000)")
    parser.add_argument(
        "--data-dir",
        default="./.batch-gateway",
        type=Path,
        help="where embedded servers and files keep their data (default ./.batch-gateway)",
    )
    parser.add_argument("--redis-url", help="use this Redis/Valkey instead of an embedded one")
    parser.add_argument("--postgres-url", help="use this PostgreSQL instead of an embedded one")
    storage = parser.add_mutually_exclusive_group()
    storage.add_argument("--storage-dir", type=Path, help="file storage folder (default DIR/files)")
    storage.add_argument("--s3-endpoint", help="S3/MinIO endpoint URL, instead of a folder")
    parser.add_argument("--s3-bucket", default="batch-gateway")
    parser.add_argument("--s3-access-key", default="")
    parser.add_argument("--s3-secret-key", default="")
    parser.add_argument("--s3-region", default="")
    parser.add_argument(
        "--inference-url",
        help="OpenAI-compatible inference endpoint (llm-d router, vLLM, ...) for every model; "
        "default: start the simulator",
    )
    parser.add_argument(
        "--without",
        action="append",
        default=[],
        choices=sorted(COMPONENTS),
        metavar="COMPONENT",
        help=f"leave a component out, to run it separately ({', '.join(sorted(COMPONENTS))})",
    )


class UpRefused(Exception):
    """Something else holds what this `up` needs; the message says what, and what to do."""


def run_up(args: argparse.Namespace) -> int:
    data_dir: Path = args.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    try:
        with _stop_on_signals(), contextlib.ExitStack() as stack:
            stack.enter_context(_only_up_on(data_dir))
            _check_port_free(args.host, args.port)
            return _run(args, data_dir, stack)
    except UpRefused as refused:
        print(f"batch-gateway up: {refused}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, data_dir: Path, stack: contextlib.ExitStack) -> int:
    """Start the servers and the components, print where they are, wait for the end."""
    redis_url, redis_note = args.redis_url, "given"
    if redis_url is None:
        redis_dir = data_dir / "redis"
        redis = EmbeddedRedis(redis_dir, remembered_port(redis_dir))
        redis.start()
        stack.callback(redis.stop)
        redis_url, redis_note = redis.url, f"embedded, data in {redis_dir}"
    postgres_url, postgres_note = args.postgres_url, "given"
    if postgres_url is None:
        postgres = EmbeddedPostgres(data_dir / "postgres")
        postgres.start()
        stack.callback(postgres.stop)
        postgres_url, postgres_note = postgres.url, f"embedded, data in {data_dir / 'postgres'}"
    settings = CommonSettings(
        redis_url=redis_url,
        postgres_url=postgres_url,
        storage=_storage(args, data_dir),
        secrets_key=_secrets_key(data_dir),
    )
    components = ComponentSet(
        to_environment(settings), args.host, args.port, data_dir / "logs", args.inference_url
    )
    env_file = data_dir / "stack.env"
    lines = [f"{key}={value}\n" for key, value in components.environment.items()]
    env_file.write_text("".join(lines))
    env_file.chmod(0o600)  # it holds the secrets key, and maybe storage credentials

    stack.callback(components.stop)
    try:
        components.start(exclude=set(args.without))
    except RuntimeError as error:
        print(f"batch-gateway up: {error}", file=sys.stderr)
        return 1
    print(
        _banner(
            args,
            redis_url,
            redis_note,
            postgres_url,
            postgres_note,
            settings,
            env_file,
            components,
        )
    )
    sys.stdout.flush()
    try:
        failed = components.wait()
    except KeyboardInterrupt:
        # A second Ctrl-C must not cut the orderly stop of servers holding data short.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print(
            "\nStopping Batch Gateway: running requests get their grace period to finish...",
            flush=True,
        )
        return 0
    log = data_dir / "logs" / f"{failed}.log"
    print(
        f"batch-gateway up: {failed} exited unexpectedly; stopping. The end of {log}:",
        *_last_lines(log, 5),
        sep="\n  ",
        file=sys.stderr,
    )
    return 1


@contextlib.contextmanager
def _only_up_on(data_dir: Path) -> Iterator[None]:
    """One `up` per data directory: a second would start a second Redis and PostgreSQL on the
    same files. The lock goes with the process, however it ends."""
    with (data_dir / "up.lock").open("a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.seek(0)
            holder = lock.read().strip() or "another process"
            raise UpRefused(
                f"{data_dir} is in use by `batch-gateway up` (pid {holder}); stop that one, "
                "or give this one another --data-dir"
            ) from None
        lock.seek(0)
        lock.truncate()
        lock.write(str(os.getpid()))
        lock.flush()
        yield


def _check_port_free(host: str, port: int) -> None:
    """Before anything starts: otherwise whatever holds the port answers the readiness probe,
    and the banner would name a stack that is not this one."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UpRefused(
                f"cannot serve the API on {host}:{port} ({error.strerror}); "
                "is another stack running? Pass --port to use another port"
            ) from None


def _last_lines(log: Path, count: int) -> list[str]:
    try:
        return log.read_text(errors="replace").splitlines()[-count:]
    except OSError:
        return ["(no log)"]


def _secrets_key(data_dir: Path) -> str:
    """This stack's key for captured headers: made once, kept with the data it protects."""
    path = data_dir / "secrets.key"
    if not path.exists():
        path.write_text(new_secrets_key())
        path.chmod(0o600)
    return path.read_text().strip()


def _storage(args: argparse.Namespace, data_dir: Path) -> StorageSettings:
    if args.s3_endpoint:
        return StorageSettings(
            kind="s3",
            s3_endpoint=args.s3_endpoint,
            s3_bucket=args.s3_bucket,
            s3_access_key=args.s3_access_key,
            s3_secret_key=args.s3_secret_key,
            s3_region=args.s3_region,
        )
    folder = (args.storage_dir or data_dir / "files").resolve()
    return StorageSettings(kind="filesystem", fs_root=str(folder))


def _banner(
    args: argparse.Namespace,
    redis_url: str,
    redis_note: str,
    postgres_url: str,
    postgres_note: str,
    settings: CommonSettings,
    env_file: Path,
    components: ComponentSet,
) -> str:
    storage = settings.storage
    where = (
        storage.fs_root
        if storage.kind == "filesystem"
        else f"{storage.s3_endpoint}/{storage.s3_bucket}"
    )
    lines = [
        "Batch Gateway is up.",
        f"  API (OpenAI base_url)  http://{args.host}:{args.port}/v1",
        f"  Console                http://{args.host}:{args.port}/console/",
        f"  Redis                  {redis_url}  ({redis_note})",
        f"  PostgreSQL             {postgres_url}  ({postgres_note})",
        f"  Storage                {storage.kind}: {where}",
        f"  Inference              {components.inference_url}"
        + ("  (the simulator)" if args.inference_url is None else ""),
    ]
    lines += [f"  {line}" for line in components.describe()]
    lines += [
        f"  Settings to join       {env_file}",
        f"    e.g.  env $(cat {env_file} | xargs) batch-gateway projector --port 9201",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[None]:
    """Turn SIGTERM into the same clean stop as Ctrl-C, and make SIGINT one even where the
    shell started us with it ignored (a background job of a script)."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous_term = signal.signal(signal.SIGTERM, interrupt)
    previous_int = signal.signal(signal.SIGINT, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous_term)
        signal.signal(signal.SIGINT, previous_int)
