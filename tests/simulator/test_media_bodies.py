"""The image and video endpoints answer with OpenAI's bodies, checked by the `openai` SDK's own
types in strict mode: images are small PNGs drawn from the prompt, usage counts the prompt's
words, 85 tokens per input image and the default output length (16) per image; a video job is
answered completed. Bad bodies get OpenAI's 400, and faults, latency and metrics apply to these
endpoints as to the others."""

from __future__ import annotations

import base64
import struct
import time
import zlib
from typing import Any

import aiohttp
import pytest
from openai import AsyncOpenAI
from openai.types import ImagesResponse, Video
from prometheus_client.parser import text_string_to_metric_families

from batch_gateway.simulator import ModelBehaviour, RunningSimulator
from tests.simulator.conftest import StartSimulator, post

GENERATIONS = "/v1/images/generations"
EDITS = "/v1/images/edits"
VIDEOS = "/v1/videos"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# An input image as a batch line carries it (the simulator checks the base64, not the image).
DATA_URL = "data:image/png;base64," + base64.b64encode(PNG_SIGNATURE + b"pixels").decode()


def _png_pixels(b64: str) -> tuple[int, int, bytes]:
    """Width, height and the pixel rows (filter bytes included) of an 8-bit RGB PNG."""
    png = base64.b64decode(b64, validate=True)
    assert png.startswith(PNG_SIGNATURE)
    offset, chunks = len(PNG_SIGNATURE), {}
    while offset < len(png):
        (length,) = struct.unpack(">I", png[offset : offset + 4])
        kind, data = png[offset + 4 : offset + 8], png[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", png[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + data), kind
        chunks[kind] = data
        offset += 12 + length
    assert set(chunks) == {b"IHDR", b"IDAT", b"IEND"}
    width, height, depth, colour = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    assert (depth, colour) == (8, 2)
    return width, height, zlib.decompress(chunks[b"IDAT"])


async def _samples(
    http: aiohttp.ClientSession, simulator: RunningSimulator, model: str
) -> dict[str, float]:
    """The /metrics samples of `model`, by name."""
    async with http.get(simulator.url + "/metrics") as response:
        text = await response.text()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.labels.get("model_name") == model
    }


async def test_image_generation_answers_openai_images_with_usage(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {
        "model": "gpt-image-1.5",
        "prompt": "a red fox in  fresh snow",
        "n": 2,
        "size": "1024x1536",
        "quality": "high",
        "background": "transparent",
    }
    status, answer = await post(http, simulator, GENERATIONS, body)
    assert status == 200
    images = ImagesResponse.model_validate(answer, strict=True)
    assert abs(images.created - time.time()) < 60
    assert (images.size, images.quality, images.background) == ("1024x1536", "high", "transparent")
    assert images.output_format == "png"
    assert images.data is not None
    assert len(images.data) == 2
    first, second = (image.b64_json for image in images.data)
    assert first is not None
    assert second is not None
    width, height, rows = _png_pixels(first)
    assert (width, height) == (8, 8)
    assert len(rows) == 8 * (1 + 3 * 8)
    assert first != second  # each image of a request is drawn apart
    assert all(image.url is None and image.revised_prompt is None for image in images.data)
    usage = images.usage
    assert usage is not None
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (6, 32, 38)
    assert (usage.input_tokens_details.text_tokens, usage.input_tokens_details.image_tokens) == (
        6,
        0,
    )
    assert usage.output_tokens_details is not None
    assert usage.output_tokens_details.image_tokens == 32

    again_status, again = await post(http, simulator, GENERATIONS, body)
    assert again_status == 200
    assert [image["b64_json"] for image in again["data"]] == [first, second]


async def test_image_defaults_and_urls(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    status, answer = await post(
        http, simulator, GENERATIONS, {"prompt": "a lighthouse", "response_format": "url"}
    )
    assert status == 200
    images = ImagesResponse.model_validate(answer, strict=True)
    assert (images.size, images.quality, images.background) == ("1024x1024", "medium", "opaque")
    assert images.data is not None
    [image] = images.data
    assert image.b64_json is None
    assert image.url is not None
    prefix, _, b64 = image.url.partition(",")
    assert prefix == "data:image/png;base64"
    assert _png_pixels(b64)[:2] == (8, 8)
    assert (await _samples(http, simulator, "gpt-image-1.5"))["vllm:prompt_tokens_total"] == 2


async def test_a_json_image_edit_counts_its_input_images(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {
        "model": "gpt-image-1.5",
        "prompt": "put a hat on the cat",
        "images": [
            {"image_url": DATA_URL},
            {"image_url": "https://example.com/cat.png"},
            {"file_id": "file-abc123"},
        ],
        "mask": {"image_url": DATA_URL},
        "input_fidelity": "high",
    }
    status, answer = await post(http, simulator, EDITS, body)
    assert status == 200
    images = ImagesResponse.model_validate(answer, strict=True)
    assert images.data is not None
    [image] = images.data
    assert image.b64_json is not None
    usage = images.usage
    assert usage is not None
    assert (usage.input_tokens_details.text_tokens, usage.input_tokens_details.image_tokens) == (
        6,
        3 * 85,
    )
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (261, 16, 277)


@pytest.mark.parametrize("image", [DATA_URL, [DATA_URL, "https://example.com/a.png"]])
async def test_an_edit_may_name_its_images_as_image_urls(
    http: aiohttp.ClientSession, simulator: RunningSimulator, image: str | list[str]
) -> None:
    status, answer = await post(http, simulator, EDITS, {"prompt": "brighter", "image": image})
    assert status == 200, answer
    usage = ImagesResponse.model_validate(answer, strict=True).usage
    assert usage is not None
    assert usage.input_tokens_details.image_tokens == 85 * (1 if isinstance(image, str) else 2)


async def test_a_video_job_is_answered_completed(
    http: aiohttp.ClientSession, simulator: RunningSimulator
) -> None:
    body = {"model": "sora-2-pro", "prompt": "waves at dusk", "seconds": "8", "size": "1280x720"}
    status, answer = await post(http, simulator, VIDEOS, body)
    assert status == 200
    video = Video.model_validate(answer, strict=True)
    assert video.id.startswith("video_")
    assert video.object == "video"
    assert (video.model, video.status, video.progress) == ("sora-2-pro", "completed", 100)
    assert (video.seconds, video.size, video.prompt) == ("8", "1280x720", "waves at dusk")
    assert video.completed_at is not None
    assert video.created_at <= video.completed_at
    assert video.expires_at == video.completed_at + 3600
    assert video.error is None
    assert "usage" not in answer

    status, answer = await post(http, simulator, VIDEOS, {"prompt": "a cat", "seconds": 4})
    assert status == 200
    video = Video.model_validate(answer, strict=True)
    assert (video.model, video.seconds, video.size) == ("sora-2", "4", "720x1280")


@pytest.mark.parametrize(
    ("path", "body", "param"),
    [
        (GENERATIONS, {"model": "m"}, "prompt"),
        (GENERATIONS, {"prompt": "x", "n": 11}, "n"),
        (GENERATIONS, {"prompt": "x", "size": "huge"}, "size"),
        (GENERATIONS, {"prompt": "x", "quality": "ultra"}, "quality"),
        (GENERATIONS, {"prompt": "x", "background": "plaid"}, "background"),
        (GENERATIONS, {"prompt": "x", "response_format": "gif"}, "response_format"),
        (GENERATIONS, {"prompt": "x", "stream": True}, "stream"),
        (EDITS, {"prompt": "x"}, "images"),
        (EDITS, {"prompt": "x", "images": []}, "images"),
        (EDITS, {"prompt": "x", "images": [{"image_url": "ftp://a/b.png"}]}, "images[0].image_url"),
        (EDITS, {"prompt": "x", "images": [{"image_url": "data:image/png;base64,@@"}]}, None),
        (EDITS, {"prompt": "x", "images": [{"image_url": DATA_URL, "file_id": "f"}]}, "images[0]"),
        (EDITS, {"prompt": "x", "images": [{}]}, "images[0]"),
        (EDITS, {"prompt": "x", "image": "not a url"}, "image"),
        (EDITS, {"prompt": "x", "images": [{"file_id": "f"}], "mask": {}}, "mask"),
        (EDITS, {"prompt": "x", "images": [{"file_id": "f"}] * 17}, "images"),
        (VIDEOS, {"seconds": "4"}, "prompt"),
        (VIDEOS, {"prompt": "x", "seconds": "four"}, "seconds"),
        (VIDEOS, {"prompt": "x", "seconds": 0}, "seconds"),
        (VIDEOS, {"prompt": "x", "size": "wide"}, "size"),
    ],
)
async def test_unusable_image_and_video_bodies_get_openai_400s(
    http: aiohttp.ClientSession,
    simulator: RunningSimulator,
    path: str,
    body: dict[str, Any],
    param: str | None,
) -> None:
    status, answer = await post(http, simulator, path, body)
    assert status == 400, answer
    assert set(answer["error"]) == {"message", "type", "param", "code"}
    assert answer["error"]["type"] == "invalid_request_error"
    if param is not None:
        assert answer["error"]["param"] == param
    else:
        assert answer["error"]["param"] == "images[0].image_url"
        assert "base64" in answer["error"]["message"]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (GENERATIONS, {"model": "painter", "prompt": "x"}),
        (EDITS, {"model": "painter", "prompt": "x", "images": [{"image_url": DATA_URL}]}),
        (VIDEOS, {"model": "painter", "prompt": "x"}),
    ],
)
async def test_faults_latency_and_metrics_apply_to_image_and_video_requests(
    start_simulator: StartSimulator,
    http: aiohttp.ClientSession,
    path: str,
    body: dict[str, Any],
) -> None:
    sim = await start_simulator(
        models={
            "painter": ModelBehaviour(latency_seconds=0.2),
            "broken": ModelBehaviour(rate_500=1),
        }
    )
    started = time.monotonic()
    status, _ = await post(http, sim, path, body)
    assert status == 200
    assert time.monotonic() - started >= 0.2
    status, answer = await post(http, sim, path, {**body, "model": "broken"})
    assert status == 500
    assert answer["error"]["type"] == "server_error"
    assert sim.stats().by_path == {path: 2}
    assert sim.stats().by_status == {"200": 1, "500": 1}
    samples = await _samples(http, sim, "painter")
    assert samples["vllm:request_success_total"] == 1
    assert samples["vllm:prompt_tokens_total"] == (1 + 85 if path == EDITS else 1)
    assert samples["vllm:generation_tokens_total"] == 16

    strict = await start_simulator(strict_models=True)
    status, answer = await post(http, strict, path, body)
    assert status == 404
    assert answer["error"]["code"] == "model_not_found"


async def test_the_openai_sdk_generates_images_from_the_simulator(
    simulator: RunningSimulator,
) -> None:
    async with AsyncOpenAI(
        base_url=simulator.base_url, api_key="x", max_retries=0, _strict_response_validation=True
    ) as client:
        images = await client.images.generate(model="gpt-image-1.5", prompt="a blue door", n=3)
    assert images.data is not None
    assert len({image.b64_json for image in images.data}) == 3
    assert images.usage is not None
    assert images.usage.total_tokens == 3 + 3 * 16
