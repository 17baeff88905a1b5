"""The Files API on S3 storage (moto): the bytes land in the bucket and leave it on delete."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import openai
import pytest

from batch_gateway.gateway.settings import FileLimits
from batch_gateway.storage import StorageSettings, file_object_key
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.s3_server import S3Endpoint
from tests.harness.sdk import sdk_client

MAX_BYTES = 4096
MAX_LINES = 3


@pytest.fixture
def bucket() -> str:
    return f"test-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def s3_stack(start_stack: StartStack, s3_endpoint: S3Endpoint, bucket: str) -> LiveStack:
    storage = StorageSettings(
        kind="s3",
        s3_endpoint=s3_endpoint.url,
        s3_bucket=bucket,
        s3_access_key=s3_endpoint.access_key,
        s3_secret_key=s3_endpoint.secret_key,
        s3_region=s3_endpoint.region,
    )
    return start_stack(
        storage=storage, files=FileLimits(max_bytes=MAX_BYTES, max_batch_lines=MAX_LINES)
    )


@pytest.fixture
def s3(s3_endpoint: S3Endpoint) -> Iterator[Any]:
    client = boto3.client(
        "s3",
        endpoint_url=s3_endpoint.url,
        aws_access_key_id=s3_endpoint.access_key,
        aws_secret_access_key=s3_endpoint.secret_key,
        region_name=s3_endpoint.region,
    )
    yield client
    client.close()


def keys_in(s3: Any, bucket: str) -> list[str]:
    listing = s3.list_objects_v2(Bucket=bucket)
    return sorted(item["Key"] for item in listing.get("Contents", []))


def test_upload_list_download_delete_on_s3(s3_stack: LiveStack, s3: Any, bucket: str) -> None:
    data = b'{"custom_id": "1"}\n{"custom_id": "2"}\n'
    with sdk_client(s3_stack) as client:
        created = client.files.create(file=("in.jsonl", data), purpose="batch")
        key = file_object_key("default", created.id)

        assert keys_in(s3, bucket) == [key]
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
        assert [f.id for f in client.files.list()] == [created.id]
        assert client.files.retrieve(created.id) == created
        assert client.files.content(created.id).content == data

        assert client.files.delete(created.id).deleted is True

        assert keys_in(s3, bucket) == []
        assert list(client.files.list()) == []
        with pytest.raises(openai.NotFoundError):
            client.files.content(created.id)


def test_an_oversized_upload_leaves_nothing_in_the_bucket(
    s3_stack: LiveStack, s3: Any, bucket: str
) -> None:
    with sdk_client(s3_stack) as client, pytest.raises(openai.APIStatusError) as raised:
        client.files.create(file=("big.bin", b"x" * (MAX_BYTES + 1)), purpose="user_data")

    assert raised.value.status_code == 413
    assert keys_in(s3, bucket) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_a_batch_file_over_the_line_limit_leaves_nothing_in_the_bucket(
    s3_stack: LiveStack, s3: Any, bucket: str
) -> None:
    with sdk_client(s3_stack) as client, pytest.raises(openai.BadRequestError) as raised:
        client.files.create(file=("in.jsonl", b"{}\n" * (MAX_LINES + 1)), purpose="batch")

    assert raised.value.code == "too_many_lines"
    assert keys_in(s3, bucket) == []
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []
