"""Who gets the next free slot of an inference gateway: weighted fair queueing between flows.

Every request waiting for a slot belongs to a flow: its batch's priority class, tenant and
batch. A slot goes to
- the first class (`high`, `normal`, `low`) with a waiting request, except that after
  `STARVATION_LIMIT` grants to higher classes while a lower one waits, the lowest waiting
  class gets one: low never starves (as in the job queue, ADR 0007);
- within the class, the tenant next in deficit round robin: each tenant's turn adds its weight
  to its deficit and each grant costs 1, so over time tenants are served in proportion to
  their weights however many requests each has waiting (ADR 0030);
- within the tenant, its batches in turn (round robin), so a tenant's small batch is not
  queued behind its big one.
Requests of one batch keep their order.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import Mapping
from typing import NamedTuple

from batch_gateway.processors.execution.priority import PRIORITY_CLASSES

STARVATION_LIMIT = 8


class Flow(NamedTuple):
    priority: str
    tenant: str
    batch: str


Waiter = asyncio.Future[None]


class _Tenant:
    def __init__(self) -> None:
        self.deficit = 0.0
        self.batches: OrderedDict[str, deque[Waiter]] = OrderedDict()

    def take(self) -> Waiter:
        """The first waiter of the batch whose turn it is; that batch goes to the back."""
        batch, waiters = next(iter(self.batches.items()))
        waiter = waiters.popleft()
        if waiters:
            self.batches.move_to_end(batch)
        else:
            del self.batches[batch]
        return waiter


class FairQueue:
    def __init__(self, weights: Mapping[str, float] | None = None) -> None:
        self._weights = dict(weights or {})
        # Per class, the tenants with waiting requests, in round-robin order.
        self._classes: dict[str, OrderedDict[str, _Tenant]] = {
            priority: OrderedDict() for priority in PRIORITY_CLASSES
        }
        self._size = 0
        self._streak = 0

    def __len__(self) -> int:
        return self._size

    def _tenants(self, priority: str) -> OrderedDict[str, _Tenant]:
        return self._classes.get(priority, self._classes["normal"])

    def push(self, flow: Flow, waiter: Waiter) -> None:
        tenants = self._tenants(flow.priority)
        tenant = tenants.get(flow.tenant)
        if tenant is None:
            tenant = tenants[flow.tenant] = _Tenant()
        tenant.batches.setdefault(flow.batch, deque()).append(waiter)
        self._size += 1

    def remove(self, flow: Flow, waiter: Waiter) -> None:
        """Take back a waiter that gave up (cancelled) before its turn."""
        tenants = self._tenants(flow.priority)
        tenant = tenants.get(flow.tenant)
        waiters = tenant.batches.get(flow.batch) if tenant is not None else None
        if tenant is None or waiters is None or waiter not in waiters:
            return
        waiters.remove(waiter)
        self._size -= 1
        if not waiters:
            del tenant.batches[flow.batch]
        if not tenant.batches:
            del tenants[flow.tenant]

    def pop(self) -> Waiter | None:
        """The waiter whose turn it is, or None when nobody waits."""
        waiting = [priority for priority, tenants in self._classes.items() if tenants]
        if not waiting:
            return None
        if self._streak >= STARVATION_LIMIT and len(waiting) > 1:
            priority, self._streak = waiting[-1], 0
        else:
            priority = waiting[0]
            self._streak = self._streak + 1 if len(waiting) > 1 else 0
        self._size -= 1
        return self._pop_tenant(self._classes[priority])

    def _pop_tenant(self, tenants: OrderedDict[str, _Tenant]) -> Waiter:
        while True:
            name, tenant = next(iter(tenants.items()))
            if tenant.deficit < 1.0:
                # Its turn: its quantum. A weight under 1 needs several turns for one grant.
                tenant.deficit += self._weights.get(name, 1.0)
                if tenant.deficit < 1.0:
                    tenants.move_to_end(name)
                    continue
            tenant.deficit -= 1.0
            waiter = tenant.take()
            if not tenant.batches:
                del tenants[name]  # an idle tenant keeps no credit (as in DRR)
            elif tenant.deficit < 1.0:
                tenants.move_to_end(name)
            return waiter
