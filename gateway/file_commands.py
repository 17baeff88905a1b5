"""File commands: upload and delete. They store bytes, append events and wait for the
projections to catch up; they never write projection tables themselves."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterable

from batch_gateway.clock import Clock
from batch_gateway.errors import NotFound, PayloadTooLarge
from batch_gateway.events import EventLog, FileDeleted, FileUploaded
from batch_gateway.events.aggregate_store import AggregateStore, Decision
from batch_gateway.events.file_aggregate import FileState, file_store
from batch_gateway.gateway.file_form import UploadRequest, parse_upload_fields
from batch_gateway.gateway.objects import DeletedFile, FileObject
from batch_gateway.gateway.settings import FileLimits
from batch_gateway.gateway.uploads import UploadForm
from batch_gateway.ids import is_file_id, new_file_id
from batch_gateway.projections.waiter import ProjectionWaiter
from batch_gateway.storage import (
    ObjectStorage,
    ObjectTooLarge,
    StorageError,
    file_object_key,
    limit_size,
)

logger = logging.getLogger(__name__)


def no_such_file(file_id: str, param: str = "file_id") -> NotFound:
    return NotFound(f"No such File object: {file_id}", param=param)


def active_file(
    state: FileState | None, tenant: str, file_id: str, param: str = "file_id"
) -> FileState:
    """`state` if it is the tenant's active file; another tenant's, a deleted or an unknown
    file is a 404."""
    if state is None or state.tenant != tenant or state.lifecycle != "active":
        raise no_such_file(file_id, param)
    return state


async def load_active_file(
    files: AggregateStore[FileState], tenant: str, file_id: str, param: str = "file_id"
) -> tuple[FileState, int]:
    """The tenant's active file from the log (see `active_file`)."""
    if not is_file_id(file_id):
        raise no_such_file(file_id, param)
    state, version = await files.load(file_id)
    return active_file(state, tenant, file_id, param), version


class FileCommands:
    def __init__(
        self,
        log: EventLog,
        storage: ObjectStorage,
        waiter: ProjectionWaiter,
        limits: FileLimits,
        clock: Clock,
        projection_wait_seconds: float,
    ) -> None:
        self._log = log
        self._files = file_store(log)
        self._storage = storage
        self._waiter = waiter
        self._limits = limits
        self._clock = clock
        self._projection_wait_seconds = projection_wait_seconds

    async def upload(self, tenant: str, body: AsyncIterable[bytes], boundary: str) -> FileObject:
        file_id = new_file_id()
        key = file_object_key(tenant, file_id)
        form = UploadForm(
            body, boundary, self._limits.max_batch_lines, self._limits.upload_idle_timeout_seconds
        )
        try:
            size = await self._storage.write(
                key, limit_size(form.file_chunks(), self._limits.max_bytes)
            )
        except ObjectTooLarge as error:
            raise PayloadTooLarge(
                f"File is too large: the limit is {self._limits.max_bytes} bytes.",
                param="file",
                code="file_too_large",
            ) from error
        created_at = int(self._clock())
        try:
            request = parse_upload_fields(form, self._limits, created_at)
            event = _uploaded_event(request, key, size, form.line_count, created_at)
            recorded = await self._log.append(file_id, tenant, 0, [event])
        except BaseException:
            # Nothing refers to the bytes unless the event was appended: take them back.
            await self._storage.delete(key)
            raise
        await self._waiter.settle(recorded[-1], self._projection_wait_seconds)
        return FileObject(
            id=file_id,
            bytes=size,
            created_at=created_at,
            filename=event.filename,
            purpose=event.purpose,
            expires_at=event.expires_at,
        )

    async def delete(self, tenant: str, file_id: str) -> DeletedFile:
        if not is_file_id(file_id):
            raise no_such_file(file_id)

        async def delete(state: FileState | None) -> Decision:
            # Looked at again after a race (a concurrent delete, an expiry): gone is a 404.
            active_file(state, tenant, file_id)
            return Decision([FileDeleted(deleted_at=int(self._clock()))], tenant)

        deleted, recorded = await self._files.update(file_id, delete)
        assert deleted.state is not None
        await self._remove_bytes(deleted.state)
        await self._waiter.settle(recorded[-1], self._projection_wait_seconds)
        return DeletedFile(id=file_id)

    async def _remove_bytes(self, state: FileState) -> None:
        try:
            await self._storage.delete(state.storage_key)
        except StorageError as error:
            # The event already made the file gone; the gc's orphan sweep removes the bytes.
            logger.warning("could not delete the bytes of %s now: %s", state.id, error)


def _uploaded_event(
    request: UploadRequest, key: str, size: int, line_count: int, created_at: int
) -> FileUploaded:
    return FileUploaded(
        filename=request.filename,
        purpose=request.purpose,
        bytes=size,
        created_at=created_at,
        expires_at=request.expires_at,
        storage_key=key,
        line_count=line_count,
    )
