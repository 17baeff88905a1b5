"""Names of the Redis keys of the event log.

Every key one append touches shares the hash tag `{<prefix>}`, so the append script runs
on a Redis Cluster too (all keys of a script must live in one slot). The price is that the
log lives on one shard; the global stream is a single total order anyway (ADR 0002).
"""

from __future__ import annotations

import msgspec


class StreamKeys(msgspec.Struct, frozen=True):
    prefix: str = "batch-gateway"

    @property
    def tag(self) -> str:
        return "{" + self.prefix + "}"

    @property
    def global_stream(self) -> str:
        return f"{self.tag}:events"

    @property
    def log_floor(self) -> str:
        """The id below which the global stream may have been trimmed (the archive has it)."""
        return f"{self.tag}:log:floor"

    @property
    def log_readers(self) -> str:
        """Where readers of the global stream register how far they have read."""
        return f"{self.tag}:log:readers"

    def aggregate_stream(self, aggregate_id: str) -> str:
        return f"{self.tag}:aggregate:{aggregate_id}"

    def aggregate_version(self, aggregate_id: str) -> str:
        return f"{self.tag}:version:{aggregate_id}"

    def aggregate_snapshot(self, aggregate_id: str) -> str:
        return f"{self.tag}:snapshot:{aggregate_id}"
