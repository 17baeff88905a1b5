"""Priority classes of jobs and the job stream of each (ADR 0007).

A batch's class comes from its `metadata["priority"]` (`high`, `normal`, `low`); anything
else, or none, is `normal`. Processors read the classes in this order.
"""

from __future__ import annotations

from batch_gateway.events.keys import StreamKeys

PRIORITY_CLASSES = ("high", "normal", "low")
DEFAULT_PRIORITY = "normal"
METADATA_KEY = "priority"


def priority_of(metadata: dict[str, str] | None) -> str:
    value = (metadata or {}).get(METADATA_KEY, DEFAULT_PRIORITY).strip().lower()
    return value if value in PRIORITY_CLASSES else DEFAULT_PRIORITY


def job_stream(keys: StreamKeys, priority: str) -> str:
    return f"{keys.tag}:jobs:{priority}"
