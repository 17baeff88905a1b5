"""Ending asyncio tasks without depending on a single delivered cancellation.

`task.cancel()` only asks: the `CancelledError` lands at the task's next await, and code in
between can absorb it (a client library that catches it around a network read, a `suppress`
too wide, a `finally` that awaits again). Awaiting such a task then waits forever, and with it
whatever awaited it: a job that never ends while its processor looks healthy (issue 10).

So two rules hold for every long-lived task in the processors: its loop watches an explicit
stop condition, never `while True`; and whoever cancels it waits a bounded time, then reports
the task that did not end (a log line with its stack, and a metric) and goes on without it.
"""

from __future__ import annotations

import asyncio
import io
import logging
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter

logger = logging.getLogger(__name__)

# Long enough for any task that honours a cancellation to run its cleanup (a last commit is
# not cleanup: callers that need one wait for it before cancelling).
DEFAULT_BOUND_SECONDS = 5.0

UNENDED_TASKS = Counter(
    "batch_gateway_job_tasks_unended_total",
    "Tasks that were cancelled but had not ended within the bound; each is a bug to report.",
    ["task"],
)


async def end_tasks(
    tasks: Iterable[asyncio.Future[Any]], *, bound_seconds: float = DEFAULT_BOUND_SECONDS
) -> list[asyncio.Future[Any]]:
    """Cancel `tasks` and wait at most `bound_seconds` for them to end; returns those that did
    not (logged and counted). Their outcomes are retrieved, so none is reported as never
    awaited; what they raised is the owner's business before calling this."""
    tasks = list(tasks)
    waiting = [task for task in tasks if not task.done()]
    for task in waiting:
        task.cancel()
    if waiting:
        await asyncio.wait(waiting, timeout=bound_seconds)
    unended = [task for task in waiting if not task.done()]
    for task in unended:
        name = task.get_name() if isinstance(task, asyncio.Task) else repr(task)
        UNENDED_TASKS.labels(_family(name)).inc()
        logger.error(
            "task %s did not end within %.1fs of its cancellation; going on without it:\n%s",
            name,
            bound_seconds,
            _stack_of(task),
        )
    for task in tasks:
        if task.done() and not task.cancelled():
            task.exception()  # retrieved: asyncio would log it as never retrieved otherwise
    return unended


def _family(name: str) -> str:
    """The task's kind without its batch id ("watch-batch_abc" is a "watch" task): a
    label value per batch would grow the registry without bound."""
    return name.partition("-")[0] or "task"


def _stack_of(task: asyncio.Future[Any]) -> str:
    if not isinstance(task, asyncio.Task):
        return ""
    out = io.StringIO()
    task.print_stack(file=out)
    return out.getvalue()
