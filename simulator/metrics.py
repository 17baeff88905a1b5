"""vLLM's Prometheus metrics, kept as plain counters and rendered only when scraped.

Updating a prometheus_client metric takes a lock; at thousands of requests a second that is
measurable, so each model's figures are ints and floats on one object, and a Collector turns
them into metric families at scrape time. Each simulator has its own CollectorRegistry, so that
several simulators can run in one process (tests) without sharing figures.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from batch_gateway.simulator.capacity import Slots
from batch_gateway.simulator.prefix_cache import PrefixCache

# vLLM's buckets for end-to-end latency, with finer ones below 0.3 s for a fast simulator.
LATENCY_BUCKETS = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0,
)  # fmt: skip
_BUCKET_LABELS = [repr(float(bound)) for bound in LATENCY_BUCKETS] + ["+Inf"]


class ModelFigures:
    """What one model has done, in vLLM's terms."""

    def __init__(self, slots: Slots) -> None:
        self.slots = slots
        self.running = 0
        self.waiting = 0
        self.success: dict[str, int] = {}
        self.prompt_tokens = 0
        self.generation_tokens = 0
        self.latency_counts = [0] * (len(LATENCY_BUCKETS) + 1)
        self.latency_sum = 0.0

    def finished(self, reason: str, prompt_tokens: int, generation_tokens: int) -> None:
        self.success[reason] = self.success.get(reason, 0) + 1
        self.prompt_tokens += prompt_tokens
        self.generation_tokens += generation_tokens

    def observe_latency(self, seconds: float) -> None:
        self.latency_counts[bisect.bisect_left(LATENCY_BUCKETS, seconds)] += 1
        self.latency_sum += seconds


class SimulatorMetrics(Collector):
    def __init__(self) -> None:
        self.models: dict[str, ModelFigures] = {}
        self.prefix_cache: PrefixCache | None = None
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    def model(self, name: str, slots: Slots) -> ModelFigures:
        figures = self.models.get(name)
        if figures is None:
            figures = self.models[name] = ModelFigures(slots)
        return figures

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def collect(self) -> Iterator[Metric]:
        labels = ["model_name"]
        running = GaugeMetricFamily(
            "vllm:num_requests_running", "Number of requests in model execution.", labels=labels
        )
        waiting = GaugeMetricFamily(
            "vllm:num_requests_waiting",
            "Number of requests waiting to be processed.",
            labels=labels,
        )
        kv_cache = GaugeMetricFamily(
            "vllm:kv_cache_usage_perc",
            "KV-cache usage; 1 means 100 percent (here: the share of busy slots).",
            labels=labels,
        )
        success = CounterMetricFamily(
            "vllm:request_success",
            "Count of successfully processed requests.",
            labels=["finished_reason", "model_name"],
        )
        prompt = CounterMetricFamily(
            "vllm:prompt_tokens", "Number of prefill tokens processed.", labels=labels
        )
        generation = CounterMetricFamily(
            "vllm:generation_tokens", "Number of generation tokens processed.", labels=labels
        )
        latency = HistogramMetricFamily(
            "vllm:e2e_request_latency_seconds",
            "Histogram of end-to-end request latency in seconds.",
            labels=labels,
        )
        for name, figures in list(self.models.items()):
            running.add_metric([name], figures.running)
            waiting.add_metric([name], figures.waiting)
            kv_cache.add_metric([name], figures.slots.usage)
            for reason, count in figures.success.items():
                success.add_metric([reason, name], count)
            prompt.add_metric([name], figures.prompt_tokens)
            generation.add_metric([name], figures.generation_tokens)
            cumulative = 0
            buckets: list[tuple[str, float]] = []
            for label, count in zip(_BUCKET_LABELS, figures.latency_counts, strict=True):
                cumulative += count
                buckets.append((label, cumulative))
            latency.add_metric([name], buckets, figures.latency_sum)
        yield from (running, waiting, kv_cache, success, prompt, generation, latency)
        if self.prefix_cache is not None and self.prefix_cache.size:
            # vLLM counts both in tokens, over the whole server.
            yield CounterMetricFamily(
                "vllm:prefix_cache_queries",
                "Prefix cache queries, in tokens.",
                value=self.prefix_cache.queried_tokens,
            )
            yield CounterMetricFamily(
                "vllm:prefix_cache_hits",
                "Prefix cache hits, in tokens.",
                value=self.prefix_cache.hit_tokens,
            )
