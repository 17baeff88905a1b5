"""The Files API: `/v1/files`, as OpenAI serves it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, FromQuery, QueryParameter
from litestar.response import Stream

from batch_gateway.errors import InvalidRequest
from batch_gateway.gateway.dependencies import Services, Tenant
from batch_gateway.gateway.file_commands import no_such_file
from batch_gateway.gateway.objects import DeletedFile, FileList, FileObject
from batch_gateway.gateway.openapi import error_responses
from batch_gateway.ids import FILE_ID
from batch_gateway.projections.file_queries import UnknownCursor
from batch_gateway.storage import ObjectNotFound, ObjectReader

MAX_LIST_LIMIT = 10_000
# Purposes are short names (`batch`, `user_data`, ...): a filter is at most 64 characters with
# no control characters (which PostgreSQL may refuse, as it does NUL), or it is a 400.
PURPOSE_FILTER = r"^[^\x00-\x1f\x7f-\x9f]{0,64}$"


class FilesController(Controller):
    path = "/v1/files"

    @post(
        "/",
        status_code=200,
        summary="Upload a file",
        responses=error_responses(408, 413),
    )
    async def upload(
        self, request: Request[Any, Any, Any], services: Services, tenant: Tenant
    ) -> FileObject:
        media_type, options = request.content_type
        boundary = options.get("boundary")
        if media_type != "multipart/form-data" or not boundary:
            raise InvalidRequest(
                "Uploads must be multipart/form-data with a 'file' and a 'purpose' field.",
                param="file",
            )
        return await services.file_commands.upload(tenant, request.stream(), boundary)

    @get("/", summary="List files", responses=error_responses())
    async def list_files(
        self,
        services: Services,
        tenant: Tenant,
        purpose: Annotated[str | None, QueryParameter(pattern=PURPOSE_FILTER)] = None,
        after: Annotated[str | None, QueryParameter(pattern=FILE_ID.pattern)] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_LIST_LIMIT)] = MAX_LIST_LIMIT,
        order: FromQuery[Literal["asc", "desc"]] = "desc",
    ) -> FileList:
        try:
            page = await services.file_queries.list(
                tenant, purpose=purpose, after=after, limit=limit, order=order
            )
        except UnknownCursor as error:
            raise InvalidRequest(f"No such File object: {after}", param="after") from error
        return FileList.of([FileObject.from_record(r) for r in page.files], page.has_more)

    @get("/{file_id:str}", summary="Retrieve a file", responses=error_responses(404))
    async def retrieve(
        self, services: Services, tenant: Tenant, file_id: FromPath[str]
    ) -> FileObject:
        record = await services.file_queries.get(tenant, file_id)
        if record is None:
            raise no_such_file(file_id)
        return FileObject.from_record(record)

    @delete(
        "/{file_id:str}",
        status_code=200,
        summary="Delete a file",
        responses=error_responses(404),
    )
    async def delete_file(
        self, services: Services, tenant: Tenant, file_id: FromPath[str]
    ) -> DeletedFile:
        return await services.file_commands.delete(tenant, file_id)

    @get(
        "/{file_id:str}/content",
        summary="Retrieve file content",
        media_type="application/octet-stream",
        responses=error_responses(404),
    )
    async def content(self, services: Services, tenant: Tenant, file_id: FromPath[str]) -> Stream:
        record = await services.file_queries.get(tenant, file_id)
        if record is None:
            raise no_such_file(file_id)
        try:
            reader = await services.storage.read(record.storage_key)
        except ObjectNotFound as error:  # deleted between the lookup and the read
            raise no_such_file(file_id) from error
        return Stream(
            _closing(reader),
            media_type="application/octet-stream",
            headers={
                "content-length": str(reader.size),
                "content-disposition": f"attachment; filename*=UTF-8''{quote(record.filename)}",
            },
        )


async def _closing(reader: ObjectReader) -> AsyncIterator[bytes]:
    # A generator, so that a client hanging up mid-download still closes the reader.
    async with reader:
        async for chunk in reader:
            yield chunk
