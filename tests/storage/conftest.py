"""Fixtures running every storage test against both plug-ins."""

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from batch_gateway.storage import FilesystemStorage, ObjectStorage, S3Storage
from batch_gateway.storage.s3 import MIN_PART_BYTES
from tests.harness.s3_server import S3Endpoint
from tests.harness.storage_backend import Backend


@pytest.fixture(params=["filesystem", "s3"])
async def backend(
    request: pytest.FixtureRequest, tmp_path: Path, s3_endpoint: S3Endpoint
) -> AsyncIterator[Backend]:
    if request.param == "filesystem":
        filesystem = FilesystemStorage(tmp_path / "objects")
        await filesystem.open()
        yield Backend("filesystem", filesystem)
        await filesystem.close()
        return
    bucket = f"test-{uuid.uuid4().hex[:16]}"
    s3 = S3Storage(
        endpoint=s3_endpoint.url,
        bucket=bucket,
        access_key=s3_endpoint.access_key,
        secret_key=s3_endpoint.secret_key,
        region=s3_endpoint.region,
        create_bucket=True,
        # The smallest part S3 allows, so that a few MiB already take the multipart path.
        part_size=MIN_PART_BYTES,
    )
    await s3.open()
    yield Backend("s3", s3, s3_endpoint, bucket)
    await s3.close()


@pytest.fixture
def storage(backend: Backend) -> ObjectStorage:
    return backend.storage
