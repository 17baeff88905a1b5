"""`batch-gateway submit | ls | get | cancel | tail | download | files ...`: the command line for
people and scripts, on top of the official OpenAI SDK (uploads, batches, files) and the SSE
endpoint (`tail`, with httpx). ADR 0032 records the commands, their `--json` output, their
exit statuses and `--header`.

The SDK and httpx are imported only when one of these commands runs: the components share this
command line, and the SDK alone would add about 20 MB and 0.4 s to each of their starts. So
this module and the ones it imports at the top (arguments, exit codes, connection) import
neither; the commands themselves are imported in `run_client_command`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from batch_gateway.client.arguments import CLIENT_COMMANDS, add_client_commands
from batch_gateway.client.connection import Connection
from batch_gateway.client.exit_codes import CommandFailed, ExitCode

if TYPE_CHECKING:
    from openai import APIStatusError

__all__ = ["CLIENT_COMMANDS", "add_client_commands", "run_client_command"]

Command = Callable[[Connection, argparse.Namespace, TextIO], ExitCode]


def run_client_command(args: argparse.Namespace) -> int:
    """Run the client command `args` names; its exit status. An error is told once, on
    stderr, as `batch-gateway COMMAND: message`."""
    import openai

    from batch_gateway.client.event_stream import StreamRefused, StreamUnavailable

    name = " ".join(filter(None, (args.command, getattr(args, "files_command", None))))
    connection = Connection.of(args)
    try:
        return _command(name)(connection, args, sys.stdout)
    except CommandFailed as error:
        _fail(name, error.message)
        return error.code
    except StreamRefused as error:
        _fail(name, f"{error.message} (HTTP {error.status_code})")
        return ExitCode.REFUSED
    except openai.APIStatusError as error:
        _fail(name, f"{_message_of(error)} (HTTP {error.status_code})")
        retryable = error.status_code == 429 or error.status_code >= 500
        return ExitCode.UNAVAILABLE if retryable else ExitCode.REFUSED
    except (openai.APIConnectionError, StreamUnavailable) as error:
        _fail(name, f"cannot reach {connection.base_url}: {error}")
        return ExitCode.UNAVAILABLE
    except OSError as error:  # an input file that cannot be read, an output folder not written
        _fail(name, str(error))
        return ExitCode.LOCAL_FILE
    except KeyboardInterrupt:
        return ExitCode.INTERRUPTED


def _command(name: str) -> Command:
    from batch_gateway.client import batch_commands, file_commands

    def tail(connection: Connection, args: argparse.Namespace, out: TextIO) -> ExitCode:
        return batch_commands.tail(connection, args.batch_id, out, as_json=args.json)

    commands: dict[str, Command] = {
        "submit": batch_commands.submit,
        "ls": batch_commands.list_batches,
        "get": batch_commands.get,
        "cancel": batch_commands.cancel,
        "tail": tail,
        "download": batch_commands.download,
        "files ls": file_commands.list_files,
        "files upload": file_commands.upload,
        "files get": file_commands.get,
        "files rm": file_commands.remove,
    }
    return commands[name]


def _message_of(error: APIStatusError) -> str:
    """The API's own message (`error.message` of its envelope), not the SDK's rendering of
    the whole body."""
    body = error.body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return str(body["message"])
    return error.message


def _fail(command: str, message: str) -> None:
    print(f"batch-gateway {command}: {message}", file=sys.stderr, flush=True)
