"""A storage plug-in under test, with a look behind it at what the backend really holds."""

import anyio.to_thread
import boto3

from batch_gateway.storage import ObjectStorage
from tests.harness.s3_server import S3Endpoint


class Backend:
    """A storage plug-in under test, and a way to look behind it."""

    def __init__(
        self,
        kind: str,
        storage: ObjectStorage,
        s3_endpoint: S3Endpoint | None = None,
        s3_bucket: str = "",
    ) -> None:
        self.kind = kind
        self.storage = storage
        self._s3_endpoint = s3_endpoint
        self._s3_bucket = s3_bucket

    async def incomplete_uploads(self) -> list[str]:
        """Keys of multipart uploads started and neither completed nor aborted (S3 only)."""
        endpoint = self._s3_endpoint
        if endpoint is None:
            return []
        client = boto3.client(
            "s3",
            endpoint_url=endpoint.url,
            aws_access_key_id=endpoint.access_key,
            aws_secret_access_key=endpoint.secret_key,
            region_name=endpoint.region,
        )
        listing = await anyio.to_thread.run_sync(
            lambda: client.list_multipart_uploads(Bucket=self._s3_bucket)
        )
        return [upload["Key"] for upload in listing.get("Uploads", [])]
