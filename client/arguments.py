"""The arguments of the client commands: `submit`, `ls`, `get`, `cancel`, `tail`, `download` and
`files ls | upload | get | rm`.

Every one of them takes the same connection options (`--base-url`, `--api-key`, `--header`)
and `--json`, and its help ends with the exit statuses. A malformed value is refused here, by
argparse, as a usage error (exit 2) before anything is sent.
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import TYPE_CHECKING, get_args

from batch_gateway.client.exit_codes import EXIT_CODES_HELP
from batch_gateway.events.batch_aggregate import BatchStatus

CLIENT_COMMANDS = ("submit", "ls", "get", "cancel", "tail", "download", "files")
DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
BATCH_STATUSES: tuple[BatchStatus, ...] = get_args(BatchStatus)
# A header name is an RFC 9110 token; a value may hold anything but line breaks and NUL,
# which would end the header (or the request) early.
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_BAD_VALUE = re.compile(r"[\r\n\x00]")

if TYPE_CHECKING:
    _Commands = argparse._SubParsersAction[argparse.ArgumentParser]


def header_pair(text: str) -> tuple[str, str]:
    """`--header NAME=VALUE` as a (name, value) pair; anything else is a usage error."""
    name, separator, value = text.partition("=")
    name = name.strip()
    if not separator or not _TOKEN.fullmatch(name):
        raise argparse.ArgumentTypeError(f"wants NAME=VALUE, not {text!r}")
    if _BAD_VALUE.search(value):
        raise argparse.ArgumentTypeError(f"the value of {name} holds a line break or NUL")
    return name, value.strip()


def metadata_pair(text: str) -> tuple[str, str]:
    key, separator, value = text.partition("=")
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"wants KEY=VALUE, not {text!r}")
    return key, value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"wants a whole number above 0, not {text!r}")
    return value


def add_client_commands(commands: _Commands) -> None:
    common = _common_options()

    def command(group: _Commands, name: str, help: str) -> argparse.ArgumentParser:
        return group.add_parser(
            name,
            help=help,
            description=help[0].upper() + help[1:] + ".",
            parents=[common],
            epilog=EXIT_CODES_HELP,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    submit = command(commands, "submit", "upload a JSONL file and start a batch on it")
    submit.add_argument("input", type=Path, metavar="INPUT.jsonl", help="the batch input file")
    submit.add_argument("--endpoint", required=True, help="e.g. /v1/chat/completions")
    submit.add_argument("--completion-window", default="24h", help="default: 24h")
    submit.add_argument(
        "--metadata", action="append", default=[], type=metadata_pair, metavar="KEY=VALUE"
    )
    submit.add_argument("--wait", action="store_true", help="then follow it, as `tail` does")

    ls = command(commands, "ls", "list your batches, newest first")
    ls.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="at most N (default: 20)"
    )
    ls.add_argument("--after", metavar="BATCH_ID", help="those older than this one")
    ls.add_argument(
        "--status",
        choices=BATCH_STATUSES,
        metavar="STATUS",
        help=f"only those with this status, one of: {', '.join(BATCH_STATUSES)}",
    )
    get = command(commands, "get", "show one batch")
    get.add_argument("batch_id", metavar="BATCH_ID")
    get.add_argument("--wait", action="store_true", help="once it has ended; exit as `tail`")
    cancel = command(commands, "cancel", "cancel a batch")
    cancel.add_argument("batch_id", metavar="BATCH_ID")
    tail = command(commands, "tail", "follow a batch live until it ends")
    tail.add_argument("batch_id", metavar="BATCH_ID")
    download = command(commands, "download", "save a batch's output and error files")
    download.add_argument("batch_id", metavar="BATCH_ID")
    download.add_argument("-o", "--output-dir", type=Path, default=Path("."), metavar="DIR")

    files = commands.add_parser("files", help="list, upload, show and delete your files")
    file_commands = files.add_subparsers(dest="files_command", required=True, metavar="COMMAND")
    files_ls = command(file_commands, "ls", "list your files, newest first")
    files_ls.add_argument("--purpose", help="only those with this purpose, e.g. batch")
    files_ls.add_argument(
        "--limit", type=positive_int, default=20, metavar="N", help="at most N (default: 20)"
    )
    files_ls.add_argument("--after", metavar="FILE_ID", help="those older than this one")
    upload = command(file_commands, "upload", "upload a file")
    upload.add_argument("path", type=Path, metavar="PATH", help="the file to upload")
    upload.add_argument("--purpose", default="batch", help="default: batch")
    upload.add_argument(
        "--expires-after",
        type=positive_int,
        metavar="SECONDS",
        help="delete it this long after the upload (default: the server's, 30 days for batch)",
    )
    files_get = command(file_commands, "get", "show one file")
    files_get.add_argument("file_id", metavar="FILE_ID")
    rm = command(file_commands, "rm", "delete a file")
    rm.add_argument("file_id", metavar="FILE_ID")


def _common_options() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    options = common.add_argument_group("connection and output")
    options.add_argument("--base-url", help=f"OPENAI_BASE_URL, else {DEFAULT_BASE_URL}")
    options.add_argument("--api-key", help="OPENAI_API_KEY, else none")
    options.add_argument(
        "--header",
        action="append",
        default=[],
        type=header_pair,
        dest="headers",
        metavar="NAME=VALUE",
        help="send this header with every request, e.g. X-MaaS-Username=team-a (repeatable; "
        "the last of a name wins, and it wins over the client's own)",
    )
    options.add_argument(
        "--json",
        action="store_true",
        help="print the API objects as JSON (tail: one line per event) instead of a table",
    )
    return common
