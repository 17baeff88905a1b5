"""Metrics-driven admission: batch requests go out only while the inference servers have room.

The gate reads the server's load every `metrics_poll_seconds`, from its own Prometheus
endpoint (`metrics_url`: vLLM's `/metrics`, summed over every series) or from a Prometheus
server that sees a whole llm-d pool (`prometheus_url`, one PromQL query per signal), and caps
the gateway's batch requests in flight (flow_control.py):
- at what `max_running` leaves: `max_running` less what runs on the server that is not ours
  (`vllm:num_requests_running` less our requests in flight), so interactive traffic keeps the
  rest of the server's slots (0: no cap); several processors each computing this together
  fill the server up to `max_running`;
- below what we have in flight while more than `saturation_waiting_threshold` requests wait
  on the server, by as many as wait, so they get the slots of ours that end first; the cap
  keeps falling, to closed, while they keep waiting;
- closed while `vllm:kv_cache_usage_perc` (older vLLM: `vllm:gpu_cache_usage_perc`) is above
  `max_kv_cache_usage` (1: not used).
A cap that rises does so gradually (flow_control.py), from the minimum at the start. Metrics
that cannot be read (the endpoint down, an error answer, none of the signals present) keep
the gate as it was for `metrics_grace_seconds`, then close it: batch traffic fails closed
rather than flood a server it cannot see. Both are logged and counted (ADR 0030).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import NamedTuple

import aiohttp
import msgspec
from prometheus_client.parser import text_string_to_metric_families

from batch_gateway.processors import metrics
from batch_gateway.processors.execution.flow_control import AdaptiveLimit
from batch_gateway.processors.settings import GatewaySettings

logger = logging.getLogger(__name__)

WAITING = "vllm:num_requests_waiting"
RUNNING = "vllm:num_requests_running"
KV_CACHE = ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc")


class Load(NamedTuple):
    """What the server reports; None for a signal it does not report."""

    waiting: float | None
    running: float | None
    kv_cache: float | None


class Unreadable(Exception):
    """The metrics could not be read or held none of the signals."""


def load_from_metrics(text: str) -> Load:
    """The signals of a Prometheus text exposition, each summed over its series."""
    sums: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in (WAITING, RUNNING, *KV_CACHE):
                sums[sample.name] = sums.get(sample.name, 0.0) + sample.value
    kv = next((sums[name] for name in KV_CACHE if name in sums), None)
    load = Load(sums.get(WAITING), sums.get(RUNNING), kv)
    if load == Load(None, None, None):
        raise Unreadable("none of the vLLM load metrics is there")
    return load


class _Sample(msgspec.Struct):
    value: tuple[float, str]


class _Vector(msgspec.Struct):
    result: list[_Sample]


class _QueryAnswer(msgspec.Struct):
    status: str
    data: _Vector | None = None


_decode_answer = msgspec.json.Decoder(_QueryAnswer).decode


def value_of_query_answer(body: bytes) -> float | None:
    """The sum of an instant query's vector (Prometheus HTTP API); None when it is empty."""
    answer = _decode_answer(body)
    if answer.status != "success" or answer.data is None:
        raise Unreadable(f"the query failed: {body[:200]!r}")
    if not answer.data.result:
        return None
    return sum(float(sample.value[1]) for sample in answer.data.result)


class AdmissionGate:
    def __init__(
        self,
        name: str,
        settings: GatewaySettings,
        limit: AdaptiveLimit,
        session: aiohttp.ClientSession,
    ) -> None:
        self._name = name
        self._settings = settings
        self._limit = limit
        self._session = session
        self._last_read = time.monotonic()
        self._failing = False
        if self.enabled:
            # Until the first reading the server's load is unknown: a trickle, not a flood.
            limit.admit(float(limit.minimum))

    @property
    def enabled(self) -> bool:
        return bool(self._settings.metrics_url or self._settings.prometheus_url)

    async def run(self) -> None:
        """Poll until cancelled (the gateway closes)."""
        while True:
            await self.check()
            await asyncio.sleep(self._settings.metrics_poll_seconds)

    async def check(self) -> None:
        try:
            load = await self._read()
        except (aiohttp.ClientError, TimeoutError, ValueError, Unreadable) as error:
            self._unreadable(error)
            return
        if self._failing:
            logger.info("metrics of gateway %s readable again", self._name)
            self._failing = False
        self._last_read = time.monotonic()
        was_closed = self._limit.closed
        over = self.over(load)
        self._limit.admit(self.target(load))
        if self._limit.closed and not was_closed:
            logger.info("gateway %s saturated (%s): admission closed", self._name, over or "full")
        elif was_closed and not self._limit.closed:
            logger.info("gateway %s has room again: admission reopens gradually", self._name)

    def target(self, load: Load) -> float:
        """Batch requests that may be in flight after this reading. A full KV cache closes
        the gate. Requests waiting on the server get the slots of ours that end first: the
        cap falls below what we have in flight by as many, and keeps falling, to closed, while
        they keep waiting; a short queue in a burst so costs a few slots, not a ramp from 0."""
        settings = self._settings
        if load.kv_cache is not None and load.kv_cache > settings.max_kv_cache_usage:
            return 0.0
        room = self.room(load)
        if load.waiting is not None and load.waiting > settings.saturation_waiting_threshold:
            return min(room, self._limit.cap, self._limit.in_flight - load.waiting)
        return room

    def room(self, load: Load) -> float:
        """How many batch requests may be in flight, by `max_running`."""
        if not self._settings.max_running or load.running is None:
            return float("inf")
        others = max(0.0, load.running - self._limit.in_flight)
        return self._settings.max_running - others

    def over(self, load: Load) -> str:
        """Which signals are over their thresholds ("" when none). Running requests are not
        one: `room` caps them, and closing on them would send the cap back to the minimum
        each time our own requests, counted a moment late, push the total past the cap."""
        settings = self._settings
        reasons = []
        if load.waiting is not None and load.waiting > settings.saturation_waiting_threshold:
            reasons.append(f"{load.waiting:g} waiting")
        if load.kv_cache is not None and load.kv_cache > settings.max_kv_cache_usage:
            reasons.append(f"KV cache {load.kv_cache:.0%} used")
        return ", ".join(reasons)

    def _unreadable(self, error: Exception) -> None:
        metrics.ADMISSION_METRICS_FAILURES.labels(self._name).inc()
        if not self._failing:
            logger.warning("metrics of gateway %s unreadable: %s", self._name, error)
            self._failing = True
        past_grace = time.monotonic() - self._last_read > self._settings.metrics_grace_seconds
        if past_grace and not self._limit.closed:
            logger.warning("gateway %s: no metrics for too long, admission closed", self._name)
            self._limit.admit(0.0)

    async def _read(self) -> Load:
        settings = self._settings
        timeout = aiohttp.ClientTimeout(total=max(1.0, settings.metrics_poll_seconds * 2))
        if not settings.prometheus_url:
            async with self._session.get(settings.metrics_url, timeout=timeout) as response:
                response.raise_for_status()
                return load_from_metrics(await response.text())
        queries = (
            settings.prometheus_waiting_query,
            settings.prometheus_running_query,
            settings.prometheus_kv_cache_query,
        )
        values: list[float | None] = []
        url = settings.prometheus_url.rstrip("/") + "/api/v1/query"
        for query in queries:
            if not query:
                values.append(None)
                continue
            async with self._session.get(url, params={"query": query}, timeout=timeout) as response:
                response.raise_for_status()
                values.append(value_of_query_answer(await response.read()))
        load = Load(*values)
        if load == Load(None, None, None):
            raise Unreadable("every query came back empty")
        return load
