"""Refreshing a metric on a timer, without ever taking the component down.

The gauges that are counted rather than kept (queue depth, projection lag, batches per
status) are refreshed by loops that run beside the component's real work in one TaskGroup:
an exception escaping such a loop would cancel the work too. Whatever a refresh raises is
therefore logged and the next round tries again; the first failure of a run of them is a
warning, the rest are debug lines, so an outage does not flood the log every few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

logger = logging.getLogger(__name__)


async def refresh_periodically(
    refresh: Callable[[], Awaitable[None]], seconds: float, stop: asyncio.Event, what: str
) -> None:
    """Await `refresh()` every `seconds` until `stop` is set."""
    failing = False
    while not stop.is_set():
        try:
            await refresh()
        except Exception as error:
            level = logging.DEBUG if failing else logging.WARNING
            logger.log(level, "%s not refreshed: %s: %s", what, type(error).__name__, error)
            failing = True
        else:
            failing = False
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
