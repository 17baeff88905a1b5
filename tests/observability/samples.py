"""Reading metric samples from prometheus_client's process-wide registry.

The live stack runs every component in this process, so its metrics are in `REGISTRY`; other
tests have moved them too, so tests compare values before and after what they do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

from prometheus_client import REGISTRY
from prometheus_client.samples import Sample

WAIT_SECONDS = 10.0


def value(name: str, **labels: str) -> float:
    """The sample's value; 0 for a series that does not exist (yet)."""
    found = REGISTRY.get_sample_value(name, labels)
    return 0.0 if found is None else found


def samples() -> Iterator[Sample]:
    for family in REGISTRY.collect():
        yield from family.samples


def label_sets(name: str) -> list[dict[str, str]]:
    return [sample.labels for sample in samples() if sample.name == name]


def eventually(condition: Callable[[], bool], what: str) -> None:
    """For a counter moved just after the change a test waited for (a projector counts an
    event once its transaction committed, and the API may see the commit first)."""
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {WAIT_SECONDS}s: {what}")
        time.sleep(0.02)
