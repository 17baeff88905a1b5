"""A metric refresher outlives whatever its refresh raises: it runs beside the component's
work in one TaskGroup, where an escaping exception would stop the work too."""

from __future__ import annotations

import asyncio
import logging

import pytest
import redis.exceptions

from batch_gateway.periodic import refresh_periodically


async def test_a_failing_refresh_is_logged_once_and_tried_again(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    calls = 0
    failures = [redis.exceptions.TimeoutError("stalled"), ValueError("odd reply")] * 2

    async def refresh() -> None:
        nonlocal calls
        calls += 1
        if failures:
            raise failures.pop(0)
        stop.set()  # the first success ends the test

    with caplog.at_level(logging.DEBUG, logger="batch_gateway.periodic"):
        await asyncio.wait_for(refresh_periodically(refresh, 0.01, stop, "gauge"), 5)

    assert calls == 5
    levels = [record.levelno for record in caplog.records]
    assert levels == [logging.WARNING, logging.DEBUG, logging.DEBUG, logging.DEBUG]
    assert "gauge not refreshed: TimeoutError: stalled" in caplog.records[0].getMessage()
