"""Time as a dependency: components take a `Clock` so tests can move time instead of waiting."""

from __future__ import annotations

import time
from collections.abc import Callable

Clock = Callable[[], float]


def system_clock() -> float:
    return time.time()
