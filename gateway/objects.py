"""API objects shaped exactly like OpenAI's, serialised by Litestar through msgspec."""

from __future__ import annotations

from typing import Generic, Literal, Protocol, TypeVar

import msgspec

from batch_gateway.projections.file_queries import FileRecord


class FileObject(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=False):
    id: str
    object: Literal["file"] = "file"
    bytes: int
    created_at: int
    filename: str
    purpose: str
    # Bytes are stored before the upload is acknowledged, so a file is never "uploaded"
    # without being usable: the SDK's wait_for_processing() returns at once.
    status: Literal["uploaded", "processed", "error"] = "processed"
    expires_at: int | None = None
    status_details: str | None = None

    @classmethod
    def from_record(cls, record: FileRecord) -> FileObject:
        return cls(
            id=record.id,
            bytes=record.bytes,
            created_at=record.created_at,
            filename=record.filename,
            purpose=record.purpose,
            expires_at=record.expires_at,
        )


class Identified(Protocol):
    @property
    def id(self) -> str: ...


Item = TypeVar("Item", bound=Identified)


class ListPage(msgspec.Struct, Generic[Item], frozen=True, kw_only=True):
    """OpenAI's cursor page: `after=last_id` fetches the next one while `has_more`."""

    object: Literal["list"] = "list"
    data: list[Item]
    first_id: str | None
    last_id: str | None
    has_more: bool

    @classmethod
    def of(cls, data: list[Item], has_more: bool) -> ListPage[Item]:
        return cls(
            data=data,
            first_id=data[0].id if data else None,
            last_id=data[-1].id if data else None,
            has_more=has_more,
        )


FileList = ListPage[FileObject]


class DeletedFile(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    object: Literal["file"] = "file"
    deleted: bool = True


class ErrorDetail(msgspec.Struct, frozen=True, kw_only=True):
    message: str
    type: str
    param: str | None
    code: str | None


class ErrorBody(msgspec.Struct, frozen=True):
    error: ErrorDetail
