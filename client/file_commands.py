"""`batch-gateway files ls | upload | get | rm`: the caller's files, on the official OpenAI SDK.

Only `run_client_command` imports this module, when a client command runs: it pulls in the SDK.
A file's bytes come back with `download` (a batch's results); input files are the caller's own.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, TextIO, cast

from openai import omit

from batch_gateway.client.connection import Connection
from batch_gateway.client.exit_codes import ExitCode
from batch_gateway.client.listing import first_matching, show_listing
from batch_gateway.client.output import (
    api_document,
    file_rows,
    file_view,
    key_values,
    print_json,
)

if TYPE_CHECKING:
    from openai.types import FileObject, FilePurpose

# Pages of the file listing: the API allows 10,000, more than a person reads.
MAX_PAGE = 1000


def list_files(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    page = connection.api().files.list(
        purpose=args.purpose or omit, limit=min(args.limit, MAX_PAGE), after=args.after or omit
    )
    files, more = first_matching(page, args.limit)
    show_listing(files, more, file_rows, nothing="No files.", as_json=args.json, out=out)
    return ExitCode.OK


def upload(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    with args.path.open("rb") as handle:
        file = connection.api().files.create(
            file=(args.path.name, handle),
            # The server decides which purposes it takes, and names the ones it does if not.
            purpose=cast("FilePurpose", args.purpose),
            expires_after=(
                omit
                if args.expires_after is None
                else {"anchor": "created_at", "seconds": args.expires_after}
            ),
        )
    return _show(file, out, as_json=args.json)


def get(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    return _show(connection.api().files.retrieve(args.file_id), out, as_json=args.json)


def remove(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
    deleted = connection.api().files.delete(args.file_id)
    if args.json:
        print_json(api_document(deleted), out)
    else:
        out.write(f"{deleted.id} deleted\n")
        out.flush()
    return ExitCode.OK


def _show(file: FileObject, out: TextIO, *, as_json: bool) -> ExitCode:
    if as_json:
        print_json(api_document(file), out)
    else:
        key_values(file_view(file), out)
    return ExitCode.OK
