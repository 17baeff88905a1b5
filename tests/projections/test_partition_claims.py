"""Projectors split the partitions of the log between them (ADR 0029): a lone projector takes
every partition, a second one gets half within a round, no partition is held twice, and the
partitions of a projector that goes away are taken by the one left."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import pytest
import redis.asyncio as aioredis

from batch_gateway.events.keys import StreamKeys
from batch_gateway.projections import partition_claims
from batch_gateway.projections.partition_claims import PartitionClaims

PARTITIONS = 6


class _Claimer:
    def __init__(self, name: str, postgres_url: str, schema: str, client: aioredis.Redis) -> None:
        self.stop = asyncio.Event()
        self.claims = PartitionClaims(
            postgres_url,
            schema,
            client,
            StreamKeys(f"claims-{schema}", PARTITIONS),
            name,
            on_claim=self._noop,
            on_release=self._noop,
        )
        self.task = asyncio.create_task(self.claims.run(self.stop))

    @staticmethod
    async def _noop(partition: int) -> None:
        del partition

    async def end(self) -> None:
        self.stop.set()
        await self.task


async def test_projectors_split_the_partitions_and_take_over_from_one_that_leaves(
    postgres_url: str,
    pg_schema: str,
    redis_client: aioredis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(partition_claims, "ROUND_SECONDS", 0.1)
    first = _Claimer("first", postgres_url, pg_schema, redis_client)
    await _until(lambda: first.claims.held == set(range(PARTITIONS)))

    second = _Claimer("second", postgres_url, pg_schema, redis_client)
    await _until(lambda: len(first.claims.held) == len(second.claims.held) == PARTITIONS // 2)
    assert not first.claims.held & second.claims.held

    await first.end()  # its connection, and so its locks, go with it
    await _until(lambda: second.claims.held == set(range(PARTITIONS)))
    await second.end()
    assert not second.claims.held


async def _until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "the projectors did not settle"
        await asyncio.sleep(0.05)
