"""`batch-gateway submit | ls | get | cancel | tail | download`: batches from the command line,
on the official OpenAI SDK and, to follow a batch, the SSE endpoint.

Only `run_client_command` imports this module, when a client command runs: it pulls in the SDK.
Each command prints what it got (a table, `key: value` lines, or with `--json` the API objects)
and returns its exit status (client/exit_codes.py); errors propagate to the caller, which prints
them once.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from typing import TYPE_CHECKING, TextIO

import openai
from openai import omit

from batch_gateway.client.connection import Connection
from batch_gateway.client.exit_codes import CommandFailed, ExitCode, outcome
from batch_gateway.client.listing import first_matching, show_listing
from batch_gateway.client.output import (
    api_document,
    batch_rows,
    batch_view,
    key_values,
    print_json,
)
from batch_gateway.client.progress_view import ProgressView

if TYPE_CHECKING:
    from openai import OpenAI
    from openai.types import Batch

MAX_PAGE = 100  # the Batches API's largest `limit`
# The stream ends at the batch's terminal event, which the projection that `retrieve` reads may
# fold a moment later: how long a waiting command reads the batch again for its end.
READ_BACK_SECONDS = 10.0
_READ_BACK_INTERVAL = 0.1


def submit(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    client = connection.api()
    with args.input.open("rb") as handle:
        uploaded = client.files.create(file=(args.input.name, handle), purpose="batch")
    try:
        batch = client.batches.create(
            input_file_id=uploaded.id,
            endpoint=args.endpoint,
            completion_window=args.completion_window,
            metadata=dict(args.metadata) or None,
        )
    except openai.APIStatusError:
        # Refused (a wrong endpoint, window or metadata): the upload was only for this batch.
        _forget_upload(client, uploaded.id)
        raise
    if args.json:
        if args.wait:
            return wait_and_show(connection, client, batch.id, out, as_json=True)
        return _show(batch, out, as_json=True)
    out.write(batch.id + "\n")
    out.flush()
    return tail(connection, batch.id, out, as_json=False) if args.wait else ExitCode.OK


def _forget_upload(client: OpenAI, file_id: str) -> None:
    try:
        client.files.delete(file_id)
    except openai.OpenAIError:
        print(f"(the uploaded {file_id} is left behind: `files rm` it)", file=sys.stderr)


def list_batches(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    client = connection.api()
    page = client.batches.list(
        limit=MAX_PAGE if args.status else min(args.limit, MAX_PAGE), after=args.after or omit
    )
    batches, more = first_matching(
        page, args.limit, lambda batch: args.status in (None, batch.status)
    )
    show_listing(batches, more, batch_rows, nothing="No batches.", as_json=args.json, out=out)
    return ExitCode.OK


def get(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    client = connection.api()
    if args.wait:
        return wait_and_show(connection, client, args.batch_id, out, as_json=args.json)
    return _show(client.batches.retrieve(args.batch_id), out, as_json=args.json)


def cancel(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    batch = connection.api().batches.cancel(args.batch_id)
    return _show(batch, out, as_json=args.json)


def tail(connection: Connection, batch_id: str, out: TextIO, *, as_json: bool) -> ExitCode:
    """Follow the batch to its end: one redrawn line on a terminal, else a line per event (with
    `--json`, the event's document). The exit status is the batch's outcome."""
    live = out.isatty() and not as_json
    view = ProgressView(batch_id)

    def resumed(note: str) -> None:
        if not live:
            print(f"({note})", file=sys.stderr, flush=True)

    if live:
        out.write(f"{batch_id}\n")
    for message in connection.events(on_resume=resumed).follow(batch_id):
        view.apply(message.event, message.data)
        if as_json:
            # The server sends each document as one line of compact JSON: JSON Lines as it is.
            out.write(message.data + "\n")
        elif live:
            # Wider than the terminal, the line would wrap and `\r` could not redraw it.
            width = shutil.get_terminal_size().columns - 1
            out.write("\r" + view.line()[:width] + "\x1b[K")
        else:
            out.write(f"{message.event:<24} {view.line()}\n")
        out.flush()
    if not as_json:
        out.write(("\n" if live else "") + view.summary() + "\n")
        out.flush()
    return outcome(view.status)


def wait_and_show(
    connection: Connection, client: OpenAI, batch_id: str, out: TextIO, *, as_json: bool
) -> ExitCode:
    """Wait quietly for the batch to end, then show it as it ended; its outcome is the status."""
    view = ProgressView(batch_id)
    for message in connection.events().follow(batch_id):
        view.apply(message.event, message.data)
    deadline = time.monotonic() + READ_BACK_SECONDS
    batch = client.batches.retrieve(batch_id)
    while batch.status != view.status and time.monotonic() < deadline:
        time.sleep(_READ_BACK_INTERVAL)
        batch = client.batches.retrieve(batch_id)
    _show(batch, out, as_json=as_json)
    return outcome(view.status)


def download(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    client = connection.api()
    batch_id, directory = args.batch_id, args.output_dir
    batch = client.batches.retrieve(batch_id)
    files = [
        (file_id, kind, directory / f"{batch_id}_{kind}.jsonl")
        for file_id, kind in ((batch.output_file_id, "output"), (batch.error_file_id, "error"))
        if file_id
    ]
    if not files:
        raise CommandFailed(
            f"{batch_id} has no output or error file (status: {batch.status})", ExitCode.REFUSED
        )
    directory.mkdir(parents=True, exist_ok=True)
    for file_id, _, path in files:
        # Written aside and renamed: a path that exists is a whole file.
        partial = path.with_name(path.name + ".part")
        with (
            client.files.with_streaming_response.content(file_id) as response,
            partial.open("wb") as target,
        ):
            for chunk in response.iter_bytes():
                target.write(chunk)
        partial.replace(path)
        if not args.json:
            out.write(f"{path}\n")
            out.flush()
    if args.json:
        saved = [{"id": file_id, "kind": kind, "path": str(path)} for file_id, kind, path in files]
        print_json(saved, out)
    return ExitCode.OK


def _show(batch: Batch, out: TextIO, *, as_json: bool) -> ExitCode:
    if as_json:
        print_json(api_document(batch), out)
    else:
        key_values(batch_view(batch), out)
    return ExitCode.OK
