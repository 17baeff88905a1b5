"""The event loop every component runs on: uvloop where it is installed, asyncio's own
otherwise, or whichever `BATCH_GATEWAY_EVENT_LOOP` names (ADR 0031).

uvloop runs the same asyncio programs on libuv; for the processor, which spends most of its
CPU scheduling callbacks and moving bytes between sockets, it cuts the CPU per request
markedly (bench/end_to_end.py). `asyncio` stays selectable for debugging and for platforms
uvloop does not build on.
"""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoop = Literal["auto", "uvloop", "asyncio"]
T = TypeVar("T")


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for the chosen loop; None is asyncio's default."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return None
    import uvloop  # an error naming the missing package when "uvloop" was asked for

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: EventLoop = "auto") -> T:
    """`asyncio.run`, on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
