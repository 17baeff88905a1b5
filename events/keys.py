"""Names of the Redis keys of the event log.

The log is split into a fixed number of partitions (ADR 0029). An aggregate lives in one
partition for ever (a hash of its id): its own stream, version, snapshot, the partition's part
of the global stream and the job streams it enqueues into all share the partition's hash tag,
so one append script touches one slot of a Redis Cluster, and the aggregate's events keep
their order. Partition 0's tag is `{<prefix>}`, the tag of every key before partitions and of
the keys outside the log (leases, dead letters, secrets); partition k > 0 is `{<prefix>:p<k>}`.
With one partition (the default) every name is what it always was.
"""

from __future__ import annotations

import zlib
from typing import Annotated

import msgspec

# A partition count is fixed for a log's life: aggregates would otherwise move between them.
Partitions = Annotated[int, msgspec.Meta(ge=1, le=256)]


class StreamKeys(msgspec.Struct, frozen=True):
    prefix: str = "batch-gateway"
    partitions: Partitions = 1

    @property
    def tag(self) -> str:
        """The hash tag of partition 0 and of every key outside the log."""
        return "{" + self.prefix + "}"

    def partition_tag(self, partition: int) -> str:
        return self.tag if partition == 0 else "{" + f"{self.prefix}:p{partition}" + "}"

    def partition_of(self, aggregate_id: str) -> int:
        if self.partitions == 1:
            return 0
        return zlib.crc32(aggregate_id.encode()) % self.partitions

    @property
    def every_partition(self) -> range:
        return range(self.partitions)

    def partition_stream(self, partition: int) -> str:
        """Partition `partition` of the global stream: its aggregates' events, in order."""
        return f"{self.partition_tag(partition)}:events"

    @property
    def global_stream(self) -> str:
        """The global stream of an unpartitioned log (partition 0 of a partitioned one)."""
        return self.partition_stream(0)

    def log_floor(self, partition: int = 0) -> str:
        """The id below which the partition's stream may have been trimmed (the archive has
        what was)."""
        return f"{self.partition_tag(partition)}:log:floor"

    @property
    def log_readers(self) -> str:
        """Where readers of the global stream register how far they have read."""
        return f"{self.tag}:log:readers"

    def aggregate_stream(self, aggregate_id: str) -> str:
        return f"{self._aggregate_tag(aggregate_id)}:aggregate:{aggregate_id}"

    def aggregate_version(self, aggregate_id: str) -> str:
        return f"{self._aggregate_tag(aggregate_id)}:version:{aggregate_id}"

    def aggregate_snapshot(self, aggregate_id: str) -> str:
        return f"{self._aggregate_tag(aggregate_id)}:snapshot:{aggregate_id}"

    def aggregate_floor(self, aggregate_id: str) -> str:
        """The id below which a running aggregate's stream was trimmed (its archived parts
        hold what was)."""
        return f"{self._aggregate_tag(aggregate_id)}:floor:{aggregate_id}"

    def _aggregate_tag(self, aggregate_id: str) -> str:
        return self.partition_tag(self.partition_of(aggregate_id))
