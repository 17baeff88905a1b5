"""Laws of the projection, over random histories: it is the fold of the log, and applying
any part of the log again changes nothing."""

from __future__ import annotations

from typing import Any, Literal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg_pool import AsyncConnectionPool

from batch_gateway.events import Event, EventLog, FileDeleted, FileExpired, Recorded
from batch_gateway.events.aggregate import CorruptAggregate, fold
from batch_gateway.events.file_aggregate import evolve_file
from batch_gateway.projections.files import FilesProjection
from batch_gateway.projections.projector import Projector
from tests.harness.file_events import deleted, envelope, expired, new_file_id, uploaded
from tests.harness.projection_rows import checkpoint_rows, file_rows

Action = Literal["upload", "delete", "expire"]
FILES = 4
TENANTS = ("acme", "globex")

# (which file, what to do to it, whether the projector catches up right after)
COMMANDS = st.lists(
    st.tuples(
        st.integers(0, FILES - 1),
        st.sampled_from(["upload", "delete", "expire"]),
        st.booleans(),
    ),
    max_size=24,
)

_COLUMNS = (
    "id, tenant, filename, purpose, bytes, created_at, expires_at, storage_key, line_count,"
    " state, ended_at, log_ms, log_seq"
)


def _event(action: Action, slot: int, step: int) -> Event:
    if action == "upload":
        return uploaded(
            filename=f"f{slot}.jsonl",
            purpose=("batch", "fine-tune")[slot % 2],
            size=slot * 10 + step,
            created_at=step,
            expires_at=None if slot % 2 else step + 100,
            storage_key=f"k{slot}-{step}",
            line_count=step,
        )
    return deleted(at=step) if action == "delete" else expired(at=step)


async def _append_if_legal(log: EventLog, file_id: str, tenant: str, event: Event) -> None:
    """Append as a command would: only what the aggregate accepts, at its current version."""
    records = await log.read_aggregate(file_id)
    state, version = fold(evolve_file, (record.envelope for record in records))
    try:
        evolve_file(state, envelope(event, version + 1, aggregate_id=file_id, tenant=tenant))
    except CorruptAggregate:
        return
    await log.append(file_id, tenant, version, [event])


def _expected_row(records: list[Recorded]) -> tuple[Any, ...]:
    """What the `files` row of one file must be: its fold, plus where and when it ended."""
    state, _ = fold(evolve_file, (record.envelope for record in records))
    assert state is not None
    ended_at: int | None = None
    last = records[-1].envelope.event
    if isinstance(last, FileDeleted):
        ended_at = last.deleted_at
    elif isinstance(last, FileExpired):
        ended_at = last.expired_at
    first = records[0].stream_id
    return (
        state.id,
        state.tenant,
        state.filename,
        state.purpose,
        state.bytes,
        state.created_at,
        state.expires_at,
        state.storage_key,
        state.line_count,
        state.lifecycle,
        ended_at,
        first.ms,
        first.seq,
    )


async def _rows_of(pool: AsyncConnectionPool, file_ids: list[str]) -> list[tuple[Any, ...]]:
    async with pool.connection() as conn:
        cursor = await conn.execute(
            f"SELECT {_COLUMNS} FROM files WHERE id = ANY(%s) ORDER BY id",
            (file_ids,),
        )
        return await cursor.fetchall()


# The fixtures (log, schema, projector) are shared by the examples on purpose: every example
# works on files of its own, and the projection must stay right as the log grows.
@settings(
    max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(commands=COMMANDS, replayed=st.floats(0, 1))
async def test_the_projection_is_the_fold_of_the_log_and_replays_change_nothing(
    event_log: EventLog,
    projector: Projector,
    pool: AsyncConnectionPool,
    commands: list[tuple[int, Action, bool]],
    replayed: float,
) -> None:
    await projector.drain()
    start = await projector.position()
    file_ids = [new_file_id() for _ in range(FILES)]
    for step, (slot, action, catch_up) in enumerate(commands):
        event = _event(action, slot, step)
        await _append_if_legal(event_log, file_ids[slot], TENANTS[slot % 2], event)
        if catch_up:
            await projector.drain()
    await projector.drain()

    expected = []
    for file_id in sorted(file_ids):
        if records := await event_log.read_aggregate(file_id):
            expected.append(_expected_row(records))
    assert await _rows_of(pool, file_ids) == expected

    # Redelivery: any prefix of what this example appended, through the checkpoint...
    appended = await event_log.read(start)
    prefix = appended[: round(replayed * len(appended))]
    before = (await file_rows(pool), await checkpoint_rows(pool))
    assert await projector.apply(prefix) == 0
    assert (await file_rows(pool), await checkpoint_rows(pool)) == before
    # ...and past it, straight into the projection: each statement is idempotent on its own.
    files = FilesProjection()
    async with pool.connection() as conn, conn.transaction():
        cursor = conn.cursor()
        for record in prefix:
            await files.apply(cursor, record)
    assert (await file_rows(pool), await checkpoint_rows(pool)) == before
