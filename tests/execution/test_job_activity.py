"""A running job counts as stalled only with nothing in flight and no step for the whole
stall time; the processor's gauge counts such jobs at each scrape."""

from __future__ import annotations

from prometheus_client import REGISTRY

from batch_gateway.processors.execution.job_activity import (
    STALL_SECONDS,
    JobActivity,
    watch_stalled,
)


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_job_waiting_for_answers_is_never_stalled() -> None:
    clock = ManualClock()
    job = JobActivity(clock)
    job.in_flight = 3

    clock.now += STALL_SECONDS * 10

    assert not job.stalled, "a slow server is not a stuck job"


def test_a_job_with_nothing_in_flight_stalls_after_the_stall_time_without_a_step() -> None:
    clock = ManualClock()
    job = JobActivity(clock)

    clock.now += STALL_SECONDS - 1
    assert not job.stalled
    job.step()
    clock.now += STALL_SECONDS - 1
    assert not job.stalled, "the step started the time over"
    clock.now += 1
    assert job.stalled


def test_the_gauge_counts_the_stalled_jobs_at_each_scrape() -> None:
    clock = ManualClock()
    busy, stuck = JobActivity(clock), JobActivity(clock)
    busy.in_flight = 1
    watch_stalled(lambda: [busy, stuck])

    assert REGISTRY.get_sample_value("batch_gateway_jobs_stalled") == 0
    clock.now += STALL_SECONDS
    assert REGISTRY.get_sample_value("batch_gateway_jobs_stalled") == 1
