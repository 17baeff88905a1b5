"""Ending tasks with a bound: a task that honours its cancellation ends, one that absorbs it
is reported (logged with its stack, counted) and left behind instead of hanging its owner."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import pytest

from batch_gateway.task_endings import UNENDED_TASKS, end_tasks


async def _obliging() -> None:
    await asyncio.sleep(60)


async def _stubborn(release: asyncio.Event) -> None:
    # Absorbs every cancellation until the test lets it go, as a library catching
    # CancelledError around a network read would.
    while not release.is_set():
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(60)


async def test_tasks_that_honour_the_cancellation_end_and_none_is_reported() -> None:
    tasks = [asyncio.create_task(_obliging(), name=f"obliging-{i}") for i in range(3)]
    await asyncio.sleep(0)

    unended = await end_tasks(tasks, bound_seconds=1.0)

    assert unended == []
    assert all(task.cancelled() for task in tasks)


async def test_a_task_that_absorbs_its_cancellation_is_reported_and_left_behind(
    caplog: pytest.LogCaptureFixture,
) -> None:
    release = asyncio.Event()
    stubborn = asyncio.create_task(_stubborn(release), name="watch-batch_abc")
    await asyncio.sleep(0)
    before = UNENDED_TASKS.labels("watch")._value.get()

    with caplog.at_level(logging.ERROR):
        unended = await end_tasks([stubborn], bound_seconds=0.1)

    assert unended == [stubborn]
    assert not stubborn.done()
    assert UNENDED_TASKS.labels("watch")._value.get() == before + 1, "labelled by kind"
    assert "watch-batch_abc did not end" in caplog.text
    assert "_stubborn" in caplog.text, "with the stack it is stuck in"
    release.set()
    stubborn.cancel()
    await stubborn


async def test_a_task_that_failed_before_has_its_exception_retrieved() -> None:
    async def failing() -> None:
        raise RuntimeError("already failed")

    task = asyncio.create_task(failing())
    await asyncio.sleep(0)

    assert await end_tasks([task]) == []
    assert task.done()
