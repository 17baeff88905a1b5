"""The console's pages (ADR 0035): the caller's batches, one batch live, and a form that
creates a batch. They read the same projections as the API, scoped to the same tenant; what
they change (upload, create, cancel) their scripts do through the API itself, so the
console has no rule of its own to keep in step with it."""

from __future__ import annotations

import time
from typing import Annotated, Any

from litestar import Controller, Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response import Redirect, Template

from batch_gateway.gateway.console.batch_view import STATUS_FILTERS, batch_view
from batch_gateway.gateway.console.rendering import (
    PAGE_EXCEPTION_HANDLERS,
    browser_path,
    page,
    relative_root,
)
from batch_gateway.gateway.dependencies import Services, Tenant
from batch_gateway.ids import is_batch_id
from batch_gateway.processors.execution.priority import PRIORITY_CLASSES
from batch_gateway.projections.batch_queries import UnknownBatchCursor

PAGE_SIZE = 20


class ConsolePages(Controller):
    path = "/console"
    include_in_schema = False
    exception_handlers = PAGE_EXCEPTION_HANDLERS

    @get("/")
    async def batches(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        tenant: Tenant,
        status: Annotated[str | None, QueryParameter()] = None,
        after: Annotated[str | None, QueryParameter()] = None,
    ) -> Template | Redirect:
        if not browser_path(request).endswith("/"):
            # Every link on the page is relative to the folder /console/.
            return Redirect(path="console/", status_code=308)
        status = _known(status)
        views, next_after = await _page(services, tenant, status, after)
        query = f"?{request.url.query}" if request.url.query else ""
        return page(
            request,
            "batches.html",
            tenant=tenant,
            views=views,
            filters=list(STATUS_FILTERS),
            status=status,
            after=after,
            next_after=next_after,
            query=query,
        )

    @get("/rows")
    async def rows(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        tenant: Tenant,
        status: Annotated[str | None, QueryParameter()] = None,
        after: Annotated[str | None, QueryParameter()] = None,
    ) -> Template:
        """The list's rows alone: the list page swaps them in while a batch on it runs."""
        status = _known(status)
        views, _ = await _page(services, tenant, status, after)
        return page(request, "rows.html", tenant=tenant, views=views, status=status)

    @get("/batches/{batch_id:str}")
    async def batch(
        self,
        request: Request[Any, Any, Any],
        services: Services,
        tenant: Tenant,
        batch_id: FromPath[str],
    ) -> Template:
        record = await services.batch_queries.get(tenant, batch_id)
        if record is None:
            return page(
                request,
                "error.html",
                tenant=tenant,
                status_code=404,
                title="No such batch",
                message=f"No such Batch object: {batch_id}",
            )
        return page(request, "batch.html", tenant=tenant, view=batch_view(record, time.time()))

    @get("/batches")
    async def no_batch(self, request: Request[Any, Any, Any]) -> Redirect:
        """`/console/batches/` names no batch: the list is what was meant."""
        return Redirect(path=relative_root(request) + "console/", status_code=303)

    @get("/new")
    async def new(
        self, request: Request[Any, Any, Any], services: Services, tenant: Tenant
    ) -> Template:
        limits = services.settings.batches
        return page(
            request,
            "new.html",
            tenant=tenant,
            endpoints=limits.endpoints,
            windows=limits.completion_windows,
            priorities=PRIORITY_CLASSES,
        )


def _known(status: str | None) -> str | None:
    """An unknown filter shows every batch, and says so (no filter is marked)."""
    return status if status in STATUS_FILTERS else None


async def _page(
    services: Services, tenant: str, status: str | None, after: str | None
) -> tuple[list[Any], str | None]:
    statuses = STATUS_FILTERS[status] if status else None
    if after is not None and not is_batch_id(after):
        after = None  # a mangled "older" link: start from the newest, as for a stale one
    try:
        found = await services.batch_queries.list(
            tenant, after=after, limit=PAGE_SIZE, statuses=statuses
        )
    except UnknownBatchCursor:
        # A stale "older" link (its batch expired away): start again from the newest.
        found = await services.batch_queries.list(
            tenant, after=None, limit=PAGE_SIZE, statuses=statuses
        )
    now = time.time()
    views = [batch_view(record, now) for record in found.batches]
    next_after = found.batches[-1].id if found.has_more and found.batches else None
    return views, next_after
