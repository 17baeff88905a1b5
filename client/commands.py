"""`batch-gateway submit | tail | download`: the command line for people, on top of the official
OpenAI SDK (uploads, batches, file contents) and the SSE endpoint (`tail`, with httpx).

Like the OpenAI CLI they take `--base-url` and `--api-key`, defaulting to `OPENAI_BASE_URL`
and `OPENAI_API_KEY`; the base URL includes `/v1`. The SDK and httpx are imported only when one
of these commands runs: the components share this command line, and the SDK alone would add
about 20 MB and 0.4 s to each of their starts.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from openai import OpenAI

CLIENT_COMMANDS = ("submit", "tail", "download")
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
DEFAULT_API_KEY = "unused"


def add_client_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    submit = commands.add_parser("submit", help="upload a JSONL file and start a batch on it")
    submit.add_argument("input", type=Path, metavar="INPUT.jsonl", help="the batch input file")
    submit.add_argument("--endpoint", required=True, help="e.g. /v1/chat/completions")
    submit.add_argument("--completion-window", default="24h", help="default: 24h")
    submit.add_argument(
        "--metadata", action="append", default=[], metavar="KEY=VALUE", help="repeatable"
    )
    submit.add_argument("--wait", action="store_true", help="then follow it, as `tail` does")
    tail = commands.add_parser("tail", help="follow a batch live until it ends")
    tail.add_argument("batch_id", metavar="BATCH_ID")
    download = commands.add_parser("download", help="save a batch's output and error files")
    download.add_argument("batch_id", metavar="BATCH_ID")
    download.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR")
    for parser in (submit, tail, download):
        parser.add_argument("--base-url", help=f"OPENAI_BASE_URL, else {DEFAULT_BASE_URL}")
        parser.add_argument("--api-key", help="OPENAI_API_KEY, else none")


def run_client_command(args: argparse.Namespace) -> int:
    """Run `submit`, `tail` or `download`; the exit status."""
    import openai

    from batch_gateway.client.event_stream import StreamRefused, StreamUnavailable

    base_url = args.base_url or os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL
    api_key = args.api_key or os.environ.get("OPENAI_API_KEY") or DEFAULT_API_KEY
    try:
        if args.command == "tail":
            return tail(base_url, api_key, args.batch_id, sys.stdout)
        client = openai.OpenAI(base_url=base_url, api_key=api_key)
        if args.command == "download":
            return download(client, args.batch_id, args.output_dir)
        batch_id = submit(client, args)
        return tail(base_url, api_key, batch_id, sys.stdout) if args.wait else 0
    except (openai.APIStatusError, StreamRefused) as error:
        _fail(args.command, getattr(error, "message", str(error)))
    except (openai.APIConnectionError, StreamUnavailable) as error:
        _fail(args.command, f"cannot reach {base_url}: {error}")
    except OSError as error:  # an input file that cannot be read, an output folder not written
        _fail(args.command, str(error))
    except KeyboardInterrupt:
        return 130
    return 1


def submit(client: OpenAI, args: argparse.Namespace) -> str:
    metadata = dict(_pair(item) for item in args.metadata)
    with args.input.open("rb") as handle:
        uploaded = client.files.create(file=(args.input.name, handle), purpose="batch")
    batch = client.batches.create(
        input_file_id=uploaded.id,
        endpoint=args.endpoint,
        completion_window=args.completion_window,
        metadata=metadata or None,
    )
    print(batch.id, flush=True)
    return batch.id


def tail(base_url: str, api_key: str, batch_id: str, out: TextIO) -> int:
    """Follow the batch to its end: one redrawn line on a terminal, else a line per event.
    Exit status 0 only when it ends `completed`."""
    from batch_gateway.client.event_stream import EventStreamClient
    from batch_gateway.client.progress_view import ProgressView

    live = out.isatty()
    view = ProgressView(batch_id)

    def resumed(note: str) -> None:
        if not live:
            print(f"({note})", file=sys.stderr, flush=True)

    stream = EventStreamClient(base_url, api_key, on_resume=resumed)
    if live:
        out.write(f"{batch_id}\n")
    for message in stream.follow(batch_id):
        view.apply(message.event, message.data)
        if live:
            # Wider than the terminal, the line would wrap and `\r` could not redraw it.
            width = shutil.get_terminal_size().columns - 1
            out.write("\r" + view.line()[:width] + "\x1b[K")
        else:
            out.write(f"{message.event:<24} {view.line()}\n")
        out.flush()
    if live:
        out.write("\n")
    out.write(view.summary() + "\n")
    out.flush()
    return 0 if view.status == "completed" else 1


def download(client: OpenAI, batch_id: str, directory: Path) -> int:
    batch = client.batches.retrieve(batch_id)
    files = [
        (file_id, directory / f"{batch_id}_{suffix}.jsonl")
        for file_id, suffix in ((batch.output_file_id, "output"), (batch.error_file_id, "error"))
        if file_id
    ]
    if not files:
        _fail("download", f"{batch_id} has no output or error file (status: {batch.status})")
        return 1
    directory.mkdir(parents=True, exist_ok=True)
    for file_id, path in files:
        partial = path.with_name(path.name + ".part")
        with (
            client.files.with_streaming_response.content(file_id) as response,
            partial.open("wb") as target,
        ):
            for chunk in response.iter_bytes():
                target.write(chunk)
        partial.replace(path)
        print(path, flush=True)
    return 0


def _pair(item: str) -> tuple[str, str]:
    key, separator, value = item.partition("=")
    if not separator or not key:
        raise SystemExit(f"batch-gateway submit: --metadata wants KEY=VALUE, not {item!r}")
    return key, value


def _fail(command: str, message: str) -> None:
    print(f"batch-gateway {command}: {message}", file=sys.stderr, flush=True)
