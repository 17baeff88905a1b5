"""Listing and getting files: tenant-scoped, keyset-paginated, newest first by default."""

from __future__ import annotations

import pytest

from batch_gateway.events import EventLog
from batch_gateway.projections.file_queries import FileQueries, Order, UnknownCursor
from batch_gateway.projections.projector import Projector
from tests.harness.file_events import delete_file, new_file_id, upload_file


async def _all_pages(
    queries: FileQueries,
    tenant: str,
    *,
    limit: int,
    order: Order,
    purpose: str | None = None,
) -> list[list[str]]:
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await queries.list(tenant, purpose=purpose, after=after, limit=limit, order=order)
        pages.append([record.id for record in page.files])
        if not page.has_more:
            return pages
        after = page.files[-1].id


@pytest.fixture
async def five_files(event_log: EventLog, projector: Projector) -> list[str]:
    """Five files of tenant acme, oldest first, with one of tenant globex among them."""
    file_ids = []
    for index in range(5):
        file_ids.append(await upload_file(event_log, purpose=("batch", "fine-tune")[index % 2]))
        if index == 2:
            await upload_file(event_log, "globex")
    await projector.drain()
    return file_ids


@pytest.mark.parametrize("limit", [1, 2, 4, 5, 100])
async def test_pages_newest_first_cover_every_file_once(
    queries: FileQueries, five_files: list[str], limit: int
) -> None:
    pages = await _all_pages(queries, "acme", limit=limit, order="desc")
    assert [file_id for page in pages for file_id in page] == five_files[::-1]
    assert all(len(page) == limit for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= limit


@pytest.mark.parametrize("limit", [1, 3, 5])
async def test_pages_oldest_first_cover_every_file_once(
    queries: FileQueries, five_files: list[str], limit: int
) -> None:
    pages = await _all_pages(queries, "acme", limit=limit, order="asc")
    assert [file_id for page in pages for file_id in page] == five_files


async def test_has_more_is_exact_at_the_boundary(
    queries: FileQueries, five_files: list[str]
) -> None:
    exact = await queries.list("acme", purpose=None, after=None, limit=5, order="desc")
    assert (len(exact.files), exact.has_more) == (5, False)
    short = await queries.list("acme", purpose=None, after=None, limit=4, order="desc")
    assert (len(short.files), short.has_more) == (4, True)
    last = await queries.list("acme", purpose=None, after=five_files[0], limit=4, order="desc")
    assert (last.files, last.has_more) == ([], False)


async def test_a_deleted_cursor_still_pages_on(
    event_log: EventLog, projector: Projector, queries: FileQueries, five_files: list[str]
) -> None:
    first = await queries.list("acme", purpose=None, after=None, limit=2, order="desc")
    cursor = first.files[-1].id
    await delete_file(event_log, cursor)
    await delete_file(event_log, five_files[1])
    await projector.drain()

    rest = await queries.list("acme", purpose=None, after=cursor, limit=10, order="desc")

    assert [record.id for record in rest.files] == [five_files[2], five_files[0]]
    everything = await queries.list("acme", purpose=None, after=None, limit=10, order="asc")
    assert [record.id for record in everything.files] == [five_files[i] for i in (0, 2, 4)]


async def test_an_unknown_cursor_is_refused(queries: FileQueries, five_files: list[str]) -> None:
    with pytest.raises(UnknownCursor):
        await queries.list("acme", purpose=None, after=new_file_id(), limit=10, order="desc")


async def test_another_tenants_file_is_no_cursor(
    event_log: EventLog, projector: Projector, queries: FileQueries, five_files: list[str]
) -> None:
    theirs = await upload_file(event_log, "globex")
    await projector.drain()
    with pytest.raises(UnknownCursor):
        await queries.list("acme", purpose=None, after=theirs, limit=10, order="desc")


async def test_the_purpose_filter(queries: FileQueries, five_files: list[str]) -> None:
    batch = await _all_pages(queries, "acme", limit=1, order="desc", purpose="batch")
    assert [page[0] for page in batch] == [five_files[4], five_files[2], five_files[0]]
    tuning = await queries.list("acme", purpose="fine-tune", after=None, limit=10, order="asc")
    assert [record.id for record in tuning.files] == [five_files[1], five_files[3]]
    none = await queries.list("acme", purpose="vision", after=None, limit=10, order="asc")
    assert (none.files, none.has_more) == ([], False)


async def test_each_tenant_sees_only_its_own_files(
    event_log: EventLog, projector: Projector, queries: FileQueries, five_files: list[str]
) -> None:
    globex = await queries.list("globex", purpose=None, after=None, limit=10, order="desc")
    assert len(globex.files) == 1
    assert {record.tenant for record in globex.files} == {"globex"}
    theirs = globex.files[0].id
    assert theirs not in five_files
    assert await queries.get("acme", theirs) is None
    assert await queries.get("globex", theirs) == globex.files[0]
    assert await queries.get("globex", five_files[0]) is None
    nobody = await queries.list("initech", purpose=None, after=None, limit=10, order="desc")
    assert (nobody.files, nobody.has_more) == ([], False)


async def test_get_hides_deleted_files(
    event_log: EventLog, projector: Projector, queries: FileQueries, five_files: list[str]
) -> None:
    await delete_file(event_log, five_files[0])
    await projector.drain()
    assert await queries.get("acme", five_files[0]) is None
    assert await queries.get("acme", five_files[1]) is not None
