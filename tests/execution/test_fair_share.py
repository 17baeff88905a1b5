"""Weighted fair queueing of a gateway's slots: classes first (low never starves), tenants by
deficit round robin with their weights, a tenant's batches in turn, one batch in order."""

from __future__ import annotations

import asyncio
from collections import Counter

from batch_gateway.processors.execution.fair_share import STARVATION_LIMIT, FairQueue, Flow
from batch_gateway.processors.execution.flow_control import AdaptiveLimit
from tests.harness.flow_slots import holding


def _queue_of(queue: FairQueue, flows: list[Flow]) -> dict[asyncio.Future[None], Flow]:
    loop = asyncio.get_running_loop()
    owners: dict[asyncio.Future[None], Flow] = {}
    for flow in flows:
        waiter = loop.create_future()
        owners[waiter] = flow
        queue.push(flow, waiter)
    return owners


def _served(queue: FairQueue, owners: dict[asyncio.Future[None], Flow], count: int) -> list[Flow]:
    served = []
    for _ in range(count):
        waiter = queue.pop()
        assert waiter is not None
        served.append(owners[waiter])
    return served


async def test_tenants_share_by_weight_however_many_requests_each_has_waiting() -> None:
    queue = FairQueue({"big": 1.0, "heavy": 3.0})
    flows = [Flow("normal", "big", "b1")] * 900
    flows += [Flow("normal", "small", "s1")] * 100
    flows += [Flow("normal", "heavy", "h1")] * 900
    owners = _queue_of(queue, flows)

    served = Counter(flow.tenant for flow in _served(queue, owners, 500))

    assert served == {"big": 100, "small": 100, "heavy": 300}


async def test_a_tenants_batches_take_turns_and_each_keeps_its_order() -> None:
    queue = FairQueue()
    flows = [Flow("normal", "t", "huge")] * 50 + [Flow("normal", "t", "tiny")] * 3
    owners = _queue_of(queue, flows)
    order = list(owners)

    served = []
    for _ in range(8):
        waiter = queue.pop()
        assert waiter is not None
        served.append((owners[waiter].batch, order.index(waiter)))

    assert [batch for batch, _ in served] == ["huge", "tiny"] * 3 + ["huge", "huge"]
    huge = [index for batch, index in served if batch == "huge"]
    assert huge == sorted(huge), "one batch's requests go in their order"


async def test_higher_classes_go_first_and_low_still_gets_one_grant_in_so_many() -> None:
    queue = FairQueue()
    flows = [Flow("low", "t", "l")] * 10 + [Flow("high", "t", "h")] * 100
    owners = _queue_of(queue, flows)

    served = [flow.priority for flow in _served(queue, owners, 3 * (STARVATION_LIMIT + 1))]

    assert served == (["high"] * STARVATION_LIMIT + ["low"]) * 3


async def test_a_waiter_that_gives_up_leaves_the_queue() -> None:
    queue = FairQueue()
    owners = _queue_of(queue, [Flow("normal", "a", "x"), Flow("normal", "b", "y")])
    first = next(iter(owners))
    queue.remove(owners[first], first)

    assert len(queue) == 1
    assert owners[queue.pop() or first].tenant == "b"
    assert queue.pop() is None


async def test_the_limit_hands_free_slots_to_a_small_tenant_waiting_behind_a_big_one() -> None:
    limit = AdaptiveLimit(maximum=2)
    order: list[str] = []
    gate = asyncio.Event()

    async def request(tenant: str) -> None:
        async with holding(limit, Flow("normal", tenant, tenant)):
            order.append(tenant)
            await gate.wait()

    # The big tenant's 20 requests wait first; the small one's 2 come after them.
    tasks = [asyncio.create_task(request("big")) for _ in range(20)]
    await asyncio.sleep(0.01)
    tasks += [asyncio.create_task(request("small")) for _ in range(2)]
    await asyncio.sleep(0.01)
    gate.set()
    await asyncio.gather(*tasks)

    assert order[:6] == ["big", "big", "big", "small", "big", "small"]
