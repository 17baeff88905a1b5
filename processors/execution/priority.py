"""Priority classes of jobs, the job stream of each (ADR 0007), and the keys of slices.

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


def job_stream(keys: StreamKeys, priority: str, partition: int = 0) -> str:
    """The stream of a class's jobs whose batches live in `partition`: a job is enqueued in
    the same atomic step as its batch's event, so in the same hash tag (ADR 0029)."""
    return f"{keys.partition_tag(partition)}:jobs:{priority}"


def slice_stream(keys: StreamKeys, partition: int, batch_id: str) -> str:
    """The stream of an opened batch's slices (job_queue.py), in its partition's hash tag."""
    return f"{keys.partition_tag(partition)}:slices:{batch_id}"


def runnable_index(keys: StreamKeys, partition: int) -> str:
    """The hash of a partition's opened batches that may have slices left to claim."""
    return f"{keys.partition_tag(partition)}:runnable"
