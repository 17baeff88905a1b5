"""The batch state machine, as a property: any sequence of commands appended through
`AggregateStore` is either a legal transition of the lifecycle (ADR 0008) or rejected with
`IllegalTransition` having appended nothing, and whatever was appended, the `batches`
projection equals what folding the log gives."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from batch_gateway.clock import system_clock
from batch_gateway.events import EventLog
from batch_gateway.events.aggregate import fold
from batch_gateway.events.aggregate_store import AggregateStore
from batch_gateway.events.batch_aggregate import BatchState, IllegalTransition, evolve_batch
from batch_gateway.events.batch_events import (
    BatchCancelled,
    BatchCancelRequested,
    BatchCompleted,
    BatchCreated,
    BatchError,
    BatchEvent,
    BatchExpired,
    BatchFailed,
    BatchFinalizing,
    BatchInProgress,
    BatchProgress,
    BatchValidated,
    RequestCounts,
    Usage,
)
from batch_gateway.events.keys import StreamKeys
from batch_gateway.ids import new_batch_id
from batch_gateway.projections.batch_queries import BatchQueries, BatchRecord
from batch_gateway.projections.database import open_pool
from batch_gateway.projections.migrations import migrate
from batch_gateway.projections.projector import Projector

TENANT = "acme"
# The lifecycle of ADR 0008: for each status, the commands it allows and the status they lead
# to (None: unchanged). `cancel` is the API's one-step cancel of a batch nobody works on.
LIFECYCLE: dict[str | None, dict[str, str | None]] = {
    None: {"create": "validating"},
    "validating": {
        "validate": "in_progress",
        "fail": "failed",
        "cancel_requested": "cancelling",
        "cancel": "cancelled",
        "expire": "expired",
    },
    "in_progress": {
        "claim": None,
        "progress": None,
        "finalize": "finalizing",
        "fail": "failed",
        "cancel_requested": "cancelling",
        "cancel": "cancelled",
        "expire": "expired",
    },
    "cancelling": {"claim": None, "progress": None, "cancelled": "cancelled", "fail": "failed"},
    "finalizing": {"claim": None, "complete": "completed", "fail": "failed"},
}

times = st.integers(1_700_000_000, 1_800_000_000)
# Any text a client can send (JSON decoding refuses lone surrogates) but NUL, which PostgreSQL
# cannot store: the API refuses it in metadata, and the validator's messages quote with repr().
texts = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=8)
small = st.integers(0, 1000)
counts = st.builds(RequestCounts, total=small, completed=small, failed=small)
usages = st.builds(Usage, **dict.fromkeys(Usage.__struct_fields__, small))
file_ids = st.none() | st.sampled_from(["file-" + "a" * 24, "file-" + "b" * 24])
errors = st.lists(
    st.builds(
        BatchError,
        code=st.sampled_from(["invalid_json_line", "invalid_url"]),
        message=texts,
        param=st.none() | st.just("url"),
        line=st.none() | st.integers(1, 50_000),
    ),
    max_size=3,
)
# What a cancel or an expiry may carry: the final counts, usage and files, or nothing.
ending: dict[str, st.SearchStrategy[Any]] = {
    "request_counts": st.none() | counts,
    "usage": st.none() | usages,
    "output_file_id": file_ids,
    "error_file_id": file_ids,
}


def _one(event: BatchEvent) -> list[BatchEvent]:
    return [event]


def _cancel_at_once(at: int) -> list[BatchEvent]:
    return [BatchCancelRequested(cancelling_at=at), BatchCancelled(cancelled_at=at)]


def _created(at: int, metadata: dict[str, str] | None) -> BatchEvent:
    return BatchCreated(
        input_file_id="file-" + "c" * 24,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        created_at=at,
        expires_at=at + 86_400,
        metadata=metadata,
    )


metadata = st.none() | st.dictionaries(texts, texts, max_size=3)
models = st.lists(st.sampled_from(["m1", "m2", "m3"]), max_size=2, unique=True)
priorities = st.sampled_from(["high", "normal", "low"])
COMMANDS: dict[str, st.SearchStrategy[list[BatchEvent]]] = {
    "create": st.builds(_created, times, metadata).map(_one),
    "validate": st.builds(
        BatchValidated, validated_at=times, total=small, models=models, priority=priorities
    ).map(_one),
    "claim": st.builds(BatchInProgress, claimed_at=times, processor=st.just("p")).map(_one),
    "progress": st.builds(BatchProgress, request_counts=counts, usage=usages).map(_one),
    "finalize": st.builds(BatchFinalizing, finalizing_at=times).map(_one),
    "complete": st.builds(
        BatchCompleted,
        completed_at=times,
        request_counts=counts,
        usage=usages,
        output_file_id=file_ids,
        error_file_id=file_ids,
    ).map(_one),
    "fail": st.builds(BatchFailed, failed_at=times, errors=errors).map(_one),
    "cancel_requested": st.builds(BatchCancelRequested, cancelling_at=times).map(_one),
    "cancelled": st.builds(BatchCancelled, cancelled_at=times, **ending).map(_one),
    "expire": st.builds(BatchExpired, expired_at=times, **ending).map(_one),
    "cancel": times.map(_cancel_at_once),
}
# A step is a command with its events, or a drain of the projector mid-sequence.
Step = tuple[str, list[BatchEvent]]
ANYTHING = [*COMMANDS, "drain"]
ENDS = frozenset({"completed", "failed", "expired", "cancelled"})


def draw_sequence(data: st.DataObject, max_steps: int = 14) -> list[Step]:
    """Mostly what the lifecycle allows next, and often a step on to a status that does not
    end the batch, so that sequences reach every status; now and then any command at all,
    which must be refused unless the lifecycle allows it."""
    sequence: list[Step] = []
    status: str | None = None
    for _ in range(data.draw(st.integers(0, max_steps))):
        allowed = LIFECYCLE.get(status, {})
        onward = [name for name, then in allowed.items() if then and then not in ENDS]
        choices = [ANYTHING, list(allowed), onward, onward]
        pick = data.draw(st.sampled_from([c for c in choices if c]))
        name = data.draw(st.sampled_from(pick))
        if name in allowed:
            status = allowed[name] or status
        sequence.append((name, data.draw(COMMANDS[name]) if name in COMMANDS else []))
    return sequence


class Scenario:
    """An event log and a projection of it, on a fresh key prefix and a fresh schema."""

    def __init__(self, log: EventLog, projector: Projector, queries: BatchQueries) -> None:
        self.store = AggregateStore(log, evolve_batch)
        self.log = log
        self.projector = projector
        self.queries = queries

    async def run(self, sequence: list[Step]) -> None:
        batch_id = new_batch_id()
        status: str | None = None
        for name, events in sequence:
            if name == "drain":
                await self.projector.drain()
                continue
            state, version = await self.store.load(batch_id)
            allowed = LIFECYCLE.get(status, {})
            if name in allowed:
                new_state, _ = await self.store.append(batch_id, TENANT, state, version, events)
                status = allowed[name] or status
                assert new_state.status == status
            else:
                with pytest.raises(IllegalTransition):
                    await self.store.append(batch_id, TENANT, state, version, events)
                assert await self.log.version(batch_id) == version
        await self.projector.drain()
        assert await self.queries.get(TENANT, batch_id) == await self.folded(batch_id)
        event(f"ends {status}")

    async def folded(self, batch_id: str) -> BatchRecord | None:
        """The row the log says the batch should have: its folded state, and the time of the
        event behind each `*_at` column."""
        envelopes = [record.envelope for record in await self.log.read_aggregate(batch_id)]
        state, _ = fold(evolve_batch, envelopes)
        if state is None:
            return None
        at: dict[str, int] = {}
        for envelope in envelopes:
            at.update(_timestamps(envelope.event))
        return _record(state, at)


def _timestamps(event: Any) -> dict[str, int]:
    column_of: dict[type, tuple[str, Callable[[Any], int]]] = {
        BatchValidated: ("in_progress_at", lambda e: e.validated_at),
        BatchFinalizing: ("finalizing_at", lambda e: e.finalizing_at),
        BatchCompleted: ("completed_at", lambda e: e.completed_at),
        BatchFailed: ("failed_at", lambda e: e.failed_at),
        BatchExpired: ("expired_at", lambda e: e.expired_at),
        BatchCancelRequested: ("cancelling_at", lambda e: e.cancelling_at),
        BatchCancelled: ("cancelled_at", lambda e: e.cancelled_at),
    }
    if type(event) not in column_of:
        return {}
    column, value = column_of[type(event)]
    return {column: value(event)}


def _record(state: BatchState, at: dict[str, int]) -> BatchRecord:
    errors = [
        {"code": e.code, "message": e.message, "param": e.param, "line": e.line}
        for e in state.errors
    ]
    counts, usage = state.request_counts, state.usage
    return BatchRecord(
        id=state.id,
        tenant=state.tenant,
        status=state.status,
        endpoint=state.endpoint,
        input_file_id=state.input_file_id,
        completion_window=state.completion_window,
        created_at=state.created_at,
        expires_at=state.expires_at,
        in_progress_at=at.get("in_progress_at"),
        finalizing_at=at.get("finalizing_at"),
        completed_at=at.get("completed_at"),
        failed_at=at.get("failed_at"),
        expired_at=at.get("expired_at"),
        cancelling_at=at.get("cancelling_at"),
        cancelled_at=at.get("cancelled_at"),
        errors={"object": "list", "data": errors} if state.status == "failed" else None,
        metadata=state.metadata,
        model=state.models[0] if len(state.models) == 1 else None,
        output_file_id=state.output_file_id,
        error_file_id=state.error_file_id,
        total=counts.total,
        completed=counts.completed,
        failed=counts.failed,
        input_tokens=usage.input_tokens,
        cached_tokens=usage.cached_tokens,
        output_tokens=usage.output_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        total_tokens=usage.total_tokens,
    )


@pytest.fixture
def runner() -> Iterator[asyncio.Runner]:
    with asyncio.Runner() as loop:
        yield loop


def test_any_sequence_of_commands_leaves_the_projection_equal_to_the_folded_log(
    runner: asyncio.Runner,
    redis_url: str,
    postgres_url: str,
    pg_schema: str,
    key_prefix: str,
    redis_client: aioredis.Redis,  # its teardown removes the keys of `key_prefix`
) -> None:
    client = aioredis.Redis.from_url(redis_url)
    log = EventLog(client, StreamKeys(key_prefix), system_clock)
    runner.run(migrate(postgres_url, pg_schema))
    pool = runner.run(open_pool(postgres_url, pg_schema))
    scenario = Scenario(log, Projector(log, pool, pg_schema), BatchQueries(pool))

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def check(data: st.DataObject) -> None:
        runner.run(scenario.run(draw_sequence(data)))

    try:
        check()
    finally:
        runner.run(pool.close())
        runner.run(client.aclose())
