"""The Batches API: `/v1/batches`, as OpenAI serves it."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.params import FromPath, QueryParameter

from batch_gateway.errors import InvalidRequest, Unavailable
from batch_gateway.gateway.batch_commands import no_such_batch
from batch_gateway.gateway.batch_objects import BatchList, BatchObject
from batch_gateway.gateway.batch_request import parse_create_batch
from batch_gateway.gateway.dependencies import Services, Tenant
from batch_gateway.gateway.openapi import error_responses
from batch_gateway.gateway.services import ApiServices
from batch_gateway.ids import BATCH_ID
from batch_gateway.projections.batch_queries import UnknownBatchCursor

# The create body is a few fields and at most 16 metadata pairs (64 + 512 characters, ~55 KB
# escaped): a megabyte is far more than any real one, and refused while it streams in, before
# it is in memory (the app-wide limit is the upload's, 200 MB).
MAX_CREATE_BODY_BYTES = 1024 * 1024


class BatchesController(Controller):
    path = "/v1/batches"

    @post(
        "/",
        status_code=200,
        summary="Create a batch",
        request_max_body_size=MAX_CREATE_BODY_BYTES,
        responses=error_responses(404, 409, 413),
    )
    async def create(
        self, request: Request[Any, Any, Any], services: Services, tenant: Tenant
    ) -> BatchObject:
        body = parse_create_batch(await request.body(), services.settings.batches)
        batch_id, created = await services.batch_commands.create(
            tenant, body, request.headers, request.headers.get("idempotency-key")
        )
        if created is not None:
            # Answer as of the create, like OpenAI: by the time the projection shows the batch,
            # the validator may already have moved it on.
            return BatchObject.just_created(created)
        return await _read_back(services, tenant, batch_id)

    @get("/", summary="List batches", responses=error_responses())
    async def list_batches(
        self,
        services: Services,
        tenant: Tenant,
        after: Annotated[str | None, QueryParameter(pattern=BATCH_ID.pattern)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=100)] = 20,
    ) -> BatchList:
        try:
            page = await services.batch_queries.list(tenant, after=after, limit=limit)
        except UnknownBatchCursor as error:
            raise InvalidRequest(f"No such Batch object: {after}", param="after") from error
        return BatchList.of([BatchObject.from_record(r) for r in page.batches], page.has_more)

    @get("/{batch_id:str}", summary="Retrieve a batch", responses=error_responses(404))
    async def retrieve(
        self, services: Services, tenant: Tenant, batch_id: FromPath[str]
    ) -> BatchObject:
        record = await services.batch_queries.get(tenant, batch_id)
        if record is None:
            raise no_such_batch(batch_id)
        return BatchObject.from_record(record)

    @post(
        "/{batch_id:str}/cancel",
        status_code=200,
        summary="Cancel a batch",
        request_max_body_size=MAX_CREATE_BODY_BYTES,
        responses=error_responses(404, 409, 413),
    )
    async def cancel(
        self, services: Services, tenant: Tenant, batch_id: FromPath[str]
    ) -> BatchObject:
        await services.batch_commands.cancel(tenant, batch_id)
        return await _read_back(services, tenant, batch_id)


async def _read_back(services: ApiServices, tenant: str, batch_id: str) -> BatchObject:
    record = await services.batch_queries.get(tenant, batch_id)
    if record is None:
        # Only when the projector lagged past the read-your-writes wait: the change is in the
        # log, so the client may simply retrieve it in a moment.
        raise Unavailable(
            f"{batch_id} was accepted but is not readable yet; retrieve it again shortly."
        )
    return BatchObject.from_record(record)
