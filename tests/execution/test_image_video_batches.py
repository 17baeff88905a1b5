"""OpenAI's image and video batch endpoints (ADR 0033): refused unless the operator enables them
with `BATCH_GATEWAY_BATCHES_ENDPOINTS`, and once enabled, executed against the simulator like any
other endpoint, with OpenAI's bodies in the output file and the images' token usage summed into
the batch's `usage`."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import ImagesResponse, Video

from batch_gateway.gateway.settings import (
    DEFAULT_ENDPOINTS,
    IMAGE_AND_VIDEO_ENDPOINTS,
    ApiServerSettings,
    BatchLimits,
)
from batch_gateway.processors.settings import GatewaySettings
from batch_gateway.settings import SettingsError, load_settings
from tests.execution.conftest import FAST_RETRIES, ClientOf, StartSimulator
from tests.execution.results import Results, results_of, run_batch, start_batch
from tests.harness.batch_helpers import jsonl, upload, wait_until_status
from tests.harness.live_stack import LiveStack, StartStack
from tests.harness.openai_errors import error_of

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
VIDEOS = "/v1/videos"
DATA_URL = "data:image/png;base64,iVBORw0KGgo="
# Each endpoint's request bodies; the last names no model, which the server then picks.
BODIES: dict[str, list[dict[str, Any]]] = {
    GENERATIONS: [
        {"model": "gpt-image-1.5", "prompt": "a red fox in snow", "n": 2, "size": "1024x1536"},
        {"model": "gpt-image-1.5", "prompt": "a lighthouse at night", "quality": "low"},
        {"prompt": "three pears"},
    ],
    EDITS: [
        {"model": "gpt-image-1.5", "prompt": "add a hat", "images": [{"image_url": DATA_URL}]},
        {
            "model": "gpt-image-1.5",
            "prompt": "make it winter",
            "images": [{"image_url": "https://example.com/a.png"}, {"file_id": "file-abc"}],
            "mask": {"image_url": DATA_URL},
        },
        {"prompt": "brighter colours", "image": DATA_URL},
    ],
    VIDEOS: [
        {"model": "sora-2", "prompt": "waves at dusk", "seconds": "8", "size": "1280x720"},
        {"model": "sora-2", "prompt": "a cat chasing a ball", "seconds": "4"},
        {"prompt": "rain on a window"},
    ],
}


def _requests(endpoint: str) -> bytes:
    return jsonl(
        {"custom_id": f"r{i}", "method": "POST", "url": endpoint, "body": body}
        for i, body in enumerate(BODIES[endpoint])
    )


def _enabled(start_stack: StartStack, sim_url: str) -> LiveStack:
    """A stack that executes against `sim_url`, its image and video endpoints enabled as an
    operator would: by the environment variable."""
    endpoints = [*DEFAULT_ENDPOINTS, *IMAGE_AND_VIDEO_ENDPOINTS]
    environment = {"BATCH_GATEWAY_BATCHES_ENDPOINTS": json.dumps(endpoints)}
    limits = load_settings(ApiServerSettings, environment).batches
    assert limits.endpoints == endpoints
    overrides: dict[str, Any] = {
        "roles": ["validate", "execute"],
        "commit_interval_seconds": 0.1,
        "global_inference_gateway": GatewaySettings(url=sim_url),
        **FAST_RETRIES,
    }
    return start_stack(batches=limits, processor_overrides=overrides)


def _bodies(results: Results) -> list[dict[str, Any]]:
    """The response bodies of the output file, in custom_id order, all of them 200s."""
    assert results.errors == []
    lines = sorted(results.output, key=lambda line: line["custom_id"])
    assert [line["custom_id"] for line in lines] == ["r0", "r1", "r2"]
    for line in lines:
        assert line["error"] is None
        assert line["response"]["status_code"] == 200
    return [line["response"]["body"] for line in lines]


@pytest.mark.parametrize("endpoint", [GENERATIONS, EDITS])
def test_an_enabled_image_batch_completes_with_openai_images_and_their_usage(
    start_simulator: StartSimulator,
    start_stack: StartStack,
    client_of: ClientOf,
    endpoint: str,
) -> None:
    sim = start_simulator()
    client = client_of(_enabled(start_stack, sim.url))

    batch = run_batch(client, _requests(endpoint), endpoint)

    assert batch.status == "completed", batch.errors
    assert batch.endpoint == endpoint
    results = results_of(client, batch)
    results.assert_counts_match(batch)
    images = [ImagesResponse.model_validate(body, strict=True) for body in _bodies(results)]
    counts = [len(image.data or []) for image in images]
    assert counts == [2, 1, 1] if endpoint == GENERATIONS else [1, 1, 1]
    assert all(picture.b64_json for image in images for picture in image.data or [])
    usages = [image.usage for image in images]
    assert all(usage is not None and usage.total_tokens > 0 for usage in usages)
    input_tokens = sum(usage.input_tokens for usage in usages if usage is not None)
    output_tokens = sum(usage.output_tokens for usage in usages if usage is not None)
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens, batch.usage.total_tokens) == (
        input_tokens,
        output_tokens,
        input_tokens + output_tokens,
    )
    assert batch.usage.input_tokens_details.cached_tokens == 0
    assert batch.usage.output_tokens_details.reasoning_tokens == 0
    if endpoint == EDITS:
        # Words of the prompts, and 85 tokens for each input image (the mask is none).
        assert input_tokens == (3 + 85) + (3 + 2 * 85) + (2 + 85)
    # The requests that named a model were sent for it, the other for the server's default.
    assert batch.model == "gpt-image-1.5"
    assert sim.stats().by_path == {endpoint: 3}


def test_an_enabled_video_batch_completes_with_video_jobs_and_no_usage(
    start_simulator: StartSimulator, start_stack: StartStack, client_of: ClientOf
) -> None:
    sim = start_simulator()
    client = client_of(_enabled(start_stack, sim.url))

    batch = run_batch(client, _requests(VIDEOS), VIDEOS)

    assert batch.status == "completed", batch.errors
    results = results_of(client, batch)
    results.assert_counts_match(batch)
    videos = [Video.model_validate(body, strict=True) for body in _bodies(results)]
    assert [(video.model, video.seconds, video.size) for video in videos] == [
        ("sora-2", "8", "1280x720"),
        ("sora-2", "4", "720x1280"),
        ("sora-2", "4", "720x1280"),
    ]
    assert {(video.object, video.status, video.progress) for video in videos} == {
        ("video", "completed", 100)
    }
    assert len({video.id for video in videos}) == 3
    # A video job reports no token usage, so the batch has none to sum.
    assert batch.usage is not None
    assert (batch.usage.input_tokens, batch.usage.output_tokens, batch.usage.total_tokens) == (
        0,
        0,
        0,
    )
    assert sim.stats().by_path == {VIDEOS: 3}


@pytest.mark.parametrize("endpoint", IMAGE_AND_VIDEO_ENDPOINTS)
def test_image_and_video_endpoints_are_refused_unless_enabled(
    client: OpenAI, http: httpx.Client, endpoint: str
) -> None:
    file_id = upload(client, _requests(endpoint))
    body = {"input_file_id": file_id, "endpoint": endpoint, "completion_window": "24h"}

    error = error_of(http.post("/v1/batches", json=body), 400)

    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        "endpoint",
        "invalid_value",
    )
    assert error["message"].startswith(f"Invalid value for 'endpoint': {endpoint!r}.")
    assert "does not enable" in error["message"]
    with pytest.raises(openai.BadRequestError) as refused:
        start_batch(client, _requests(endpoint), endpoint)
    assert refused.value.param == "endpoint"
    assert http.get("/v1/batches").json()["data"] == []


def test_an_endpoint_nobody_knows_gets_no_hint(client: OpenAI, http: httpx.Client) -> None:
    body = {"input_file_id": upload(client, _requests(VIDEOS)), "endpoint": "/v1/audio"}
    error = error_of(http.post("/v1/batches", json=body | {"completion_window": "24h"}), 400)
    assert error["param"] == "endpoint"
    assert "does not enable" not in error["message"]


def test_lines_of_an_enabled_endpoint_are_validated_as_any_other(
    start_simulator: StartSimulator, start_stack: StartStack, client_of: ClientOf
) -> None:
    sim = start_simulator()
    client = client_of(_enabled(start_stack, sim.url))
    lines = [
        {"custom_id": "a", "method": "POST", "url": GENERATIONS, "body": {"prompt": "x"}},
        {"custom_id": "b", "method": "POST", "url": VIDEOS, "body": {"prompt": "x"}},
        {"custom_id": "c", "method": "POST", "url": VIDEOS, "body": {"prompt": "x", "model": 7}},
        {"custom_id": "d", "method": "POST", "url": VIDEOS, "body": {"stream": True}},
    ]
    batch = start_batch(client, jsonl(lines), VIDEOS)
    judged = wait_until_status(client, batch.id, {"failed", "in_progress"})
    assert judged.status == "failed"
    assert judged.errors is not None
    assert judged.errors.data is not None
    assert [(e.code, e.line, e.param) for e in judged.errors.data] == [
        ("invalid_url", 1, "url"),
        ("invalid_value", 3, "body.model"),
        ("streaming_unsupported", 4, "body.stream"),
    ]
    assert sim.stats().requests == 0


@pytest.mark.parametrize("path", ["v1/videos", "/v1/videos?x=1", "/v1/ videos", ""])
def test_an_endpoint_that_is_not_a_path_is_refused_at_start(path: str) -> None:
    environment = {"BATCH_GATEWAY_BATCHES_ENDPOINTS": json.dumps([*DEFAULT_ENDPOINTS, path])}
    with pytest.raises(SettingsError, match="BATCH_GATEWAY_BATCHES_ENDPOINTS"):
        load_settings(ApiServerSettings, environment)


def test_the_defaults_leave_image_and_video_endpoints_out() -> None:
    assert set(BatchLimits().endpoints).isdisjoint(IMAGE_AND_VIDEO_ENDPOINTS)
    assert BatchLimits().endpoints == DEFAULT_ENDPOINTS
