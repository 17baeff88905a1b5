"""Prometheus metrics of the gc, and the tally of one sweep (what `--once` reports).

Deletions are counted only when something was really there to delete, so a second gc, a
restart or a replay that finds the bytes gone adds nothing.
"""

from __future__ import annotations

from collections import Counter as Tallies
from typing import Literal

from prometheus_client import Counter, Gauge

# What a deletion removed: the bytes of a deleted or expired file, a leftover result chunk of
# an ended batch, or an orphan (an object nothing refers to, found by the orphan sweep).
DeletionKind = Literal["file", "chunk", "orphan"]
ExpiryKind = Literal["file", "batch"]

DELETIONS = Counter(
    "batch_gateway_gc_deletions_total", "Objects the gc deleted from storage.", ["kind"]
)
BYTES_FREED = Counter(
    "batch_gateway_gc_bytes_freed_total", "Bytes of the objects the gc deleted.", ["kind"]
)
EXPIRIES = Counter(
    "batch_gateway_gc_expiries_total",
    "Expiry events the gc appended (file.expired, batch.expired).",
    ["kind"],
)
LAG_EVENTS = Gauge(
    "batch_gateway_gc_lag_events", "Events in the log the gc has not read yet (after a sweep)."
)
LAG_SECONDS = Gauge(
    "batch_gateway_gc_lag_seconds",
    "Age of the oldest event whose cleanups are not done yet (0 when caught up).",
)
LOG_ENTRIES = Gauge(
    "batch_gateway_gc_log_entries",
    "Entries of the global stream in Redis (the archive holds what was trimmed, ADR 0028).",
)
ARCHIVED_THROUGH = Gauge(
    "batch_gateway_gc_archived_through_seconds",
    "Time up to which every partition of the global stream is archived (unix seconds).",
)
TRIMMED = Counter(
    "batch_gateway_gc_trimmed_entries_total", "Archived entries trimmed from the global stream."
)
RETIRED = Counter(
    "batch_gateway_gc_retired_total",
    "Ended aggregates whose events moved from Redis to the archive.",
    ["kind"],
)
SCHEDULED = Gauge("batch_gateway_gc_scheduled", "Expiries the gc keeps in its schedule.")
LEADER = Gauge("batch_gateway_gc_leader", "1 while this instance holds the gc lease and acts.")


class Tally:
    """What one sweep did (or, in a dry run, would have done)."""

    def __init__(self) -> None:
        self.deleted: Tallies[str] = Tallies()
        self.freed: Tallies[str] = Tallies()
        self.expired: Tallies[str] = Tallies()
        # Keys a dry run reported already (their bytes stay, so later steps would see them).
        self.planned: set[str] = set()

    def deletion(self, kind: DeletionKind, size: int, *, dry_run: bool) -> None:
        self.deleted[kind] += 1
        self.freed[kind] += size
        if not dry_run:
            DELETIONS.labels(kind).inc()
            BYTES_FREED.labels(kind).inc(size)

    def expiry(self, kind: ExpiryKind, *, dry_run: bool) -> None:
        self.expired[kind] += 1
        if not dry_run:
            EXPIRIES.labels(kind).inc()

    def summary(self) -> str:
        deleted = ", ".join(f"{n} {kind}" for kind, n in sorted(self.deleted.items()))
        expired = ", ".join(f"{n} {kind}" for kind, n in sorted(self.expired.items()))
        return (
            f"expired: {expired or 'nothing'}; deleted: {deleted or 'nothing'} "
            f"({sum(self.freed.values())} bytes)"
        )
