"""The error lines of requests a batch never executed, by why it stopped sending them.

Processors write them when a cancel, the end of the completion window or a given-up job stops
a batch; the gc writes the `batch_expired` one for a batch no processor ever claimed. Both
must say the same thing as OpenAI does.
"""

from __future__ import annotations

from typing import Literal

from batch_gateway.results.result_lines import ResultLine, unanswered

StoppedFor = Literal["cancelled", "expired", "failed"]

STOP_LINES: dict[StoppedFor, tuple[str, str]] = {
    "cancelled": (
        "batch_cancelled",
        "This request was not executed because the batch was cancelled.",
    ),
    "expired": (
        "batch_expired",
        "This request could not be executed before the completion window expired.",
    ),
    "failed": (
        "processing_failed",
        "This request was not executed because processing the batch failed repeatedly.",
    ),
}


def stop_line(custom_id: str, stopped_for: StoppedFor) -> ResultLine:
    """The error line of a request left unexecuted because its batch `stopped_for` that."""
    code, message = STOP_LINES[stopped_for]
    return unanswered(custom_id, code, message)
