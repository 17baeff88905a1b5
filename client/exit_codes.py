"""The exit status of every `batch-gateway` client command, in one place (ADR 0032).

A script tells how a batch ended from the status alone: `tail`, `submit --wait` and
`get --wait` exit with the batch's outcome. Every other command exits 0 when it did what it was
asked, whatever the status of the batch it shows. 2 is argparse's own code for a usage error;
130 is the shell's for an interrupt (128 + SIGINT).
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0  # the batch completed, or the command did what it was asked
    BATCH_FAILED = 1
    USAGE = 2  # an unknown option, a --header or --metadata without `=`, ...
    BATCH_EXPIRED = 3
    BATCH_CANCELLED = 4
    # The API answered with an error that asking again will not change (a 4xx but 429: no such
    # batch, a batch that cannot be cancelled, an invalid file), or `download` found no file.
    REFUSED = 5
    # No answer: the server could not be reached, timed out, or kept answering 429 or 5xx
    # through the retries. Trying again later may work.
    UNAVAILABLE = 6
    LOCAL_FILE = 7  # a local file could not be read or written
    INTERRUPTED = 130


_OUTCOMES = {
    "completed": ExitCode.OK,
    "failed": ExitCode.BATCH_FAILED,
    "expired": ExitCode.BATCH_EXPIRED,
    "cancelled": ExitCode.BATCH_CANCELLED,
}
TERMINAL_STATUSES = frozenset(_OUTCOMES)


def outcome(status: str) -> ExitCode:
    """The exit status for a batch that ended with `status`."""
    try:
        return _OUTCOMES[status]
    except KeyError:
        raise ValueError(f"{status!r} is not a status a batch ends with") from None


EXIT_CODES_HELP = """\
exit status:
  0    the batch completed (tail, submit --wait, get --wait), or the command succeeded
  1    the batch failed
  2    usage error (an unknown option, a --header or --metadata without '=')
  3    the batch expired
  4    the batch was cancelled
  5    the API refused the request (no such batch or file, a batch that cannot be
       cancelled, invalid input), or download found nothing to download
  6    the server could not be reached, or kept failing (429, 5xx) through the retries
  7    a local file could not be read or written
  130  interrupted (Ctrl-C)
"""


class CommandFailed(Exception):
    """The command cannot do what it was asked, for a reason the message gives its user."""

    def __init__(self, message: str, code: ExitCode) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
