"""The event loop every component runs on: uvloop where it is installed, asyncio's own
otherwise, or whichever `BATCH_GATEWAY_EVENT_LOOP` names (ADR 0031).

uvloop runs the same asyncio programs on libuv; for the processor, which spends most of its
CPU scheduling callbacks and moving bytes between sockets, it cuts the CPU per request
markedly (bench/end_to_end.py). `asyncio` stays selectable for debugging and for platforms
uvloop does not build on. The same place tunes Python's cyclic garbage collector (see `run`),
which took a sixth of the processor's CPU with the interpreter's defaults.
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
from collections.abc import Callable, Coroutine
from typing import Any, Literal, TypeVar

EventLoop = Literal["auto", "uvloop", "asyncio"]
T = TypeVar("T")
# The interpreter's collector, by name: type checkers run from the repository root would find
# the `gc/` folder (batch_gateway.gc's source) first.
collector = importlib.import_module("gc")
YOUNG_GENERATION_OBJECTS = 20_000


def uvloop_available() -> bool:
    return importlib.util.find_spec("uvloop") is not None


def loop_factory(choice: EventLoop) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """A factory for the chosen loop; None is asyncio's default."""
    if choice == "asyncio" or (choice == "auto" and not uvloop_available()):
        return None
    import uvloop  # an error naming the missing package when "uvloop" was asked for

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], choice: EventLoop = "auto") -> T:
    """`asyncio.run`, on the chosen loop, with the cyclic garbage collector tuned for a
    server."""
    # What was imported lives as long as the process: kept out of every collection. The
    # young generation is larger than CPython's 700 objects: a processor has hundreds of
    # requests in flight, each a few dozen containers, and at 700 every collection traversed
    # (and promoted) live requests instead of finding them gone.
    collector.freeze()
    collector.set_threshold(YOUNG_GENERATION_OBJECTS, *collector.get_threshold()[1:])
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
