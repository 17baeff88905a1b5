"""The image and video endpoints: `/v1/images/generations`, `/v1/images/edits` (JSON, as in a
batch line) and `/v1/videos`, answered with OpenAI's bodies (ADR 0033).

Images are tiny PNGs, whatever size was asked for, so that result files stay small: one solid
colour drawn from the prompt and the image's index, so equal requests get equal images. Tokens
are words, as everywhere in the simulator: an image's input tokens are the prompt's words plus
INPUT_IMAGE_TOKENS per input image, and each generated image has the model's default output
length. A video job is answered done (`completed`, progress 100), as a batch's result line holds
it; it has no usage, as OpenAI's has none.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import re
import struct
import zlib
from typing import Literal

import msgspec

from batch_gateway.simulator import bodies
from batch_gateway.simulator.inputs import (
    ImageEditRequest,
    ImageRef,
    ImageRequest,
    InvalidBody,
    VideoRequest,
    decode,
)
from batch_gateway.simulator.responses import Endpoint, Job, new_id

# What each input image of an edit counts as (what a low-detail image costs OpenAI's vision
# models): a round figure a test can predict.
INPUT_IMAGE_TOKENS = 85
MAX_INPUT_IMAGES = 16
IMAGE_SIDE_PIXELS = 8
# How long a video's download stays available after it is done, as OpenAI's does.
VIDEO_EXPIRY_SECONDS = 3600
_SIZE = re.compile(r"^[1-9][0-9]{0,4}x[1-9][0-9]{0,4}$")
_SECONDS = re.compile(r"^[1-9][0-9]{0,3}$")
_DATA_URL = re.compile(r"^data:image/[a-z0-9.+-]+;base64,", re.IGNORECASE)
_QUALITIES: dict[str | None, Literal["low", "medium", "high", "xhigh", "max"]] = {
    None: "medium", "auto": "medium", "standard": "medium", "hd": "high",
    "low": "low", "medium": "medium", "high": "high", "xhigh": "xhigh", "max": "max",
}  # fmt: skip
_BACKGROUNDS: dict[str | None, Literal["transparent", "opaque"]] = {
    None: "opaque", "auto": "opaque", "opaque": "opaque", "transparent": "transparent",
}  # fmt: skip

_image_decoder = msgspec.json.Decoder(ImageRequest)
_edit_decoder = msgspec.json.Decoder(ImageEditRequest)
_video_decoder = msgspec.json.Decoder(VideoRequest)


def read_image(raw: bytes) -> Job:
    request: ImageRequest = decode(raw, _image_decoder)
    return _image_job(request, 0)


def read_image_edit(raw: bytes) -> Job:
    request: ImageEditRequest = decode(raw, _edit_decoder)
    for index, ref in enumerate(request.images or []):
        _check_reference(ref, f"images[{index}]")
    image = request.image
    urls = (
        [(image, "image")]
        if isinstance(image, str)
        else [(url, f"image[{index}]") for index, url in enumerate(image or [])]
    )
    for url, param in urls:
        _check_url(url, param)
    if request.mask is not None:
        _check_reference(request.mask, "mask")
    count = len(request.images or []) + len(urls)
    if count == 0:
        raise InvalidBody("An image edit needs at least one image in `images`.", "images")
    if count > MAX_INPUT_IMAGES:
        raise InvalidBody(f"An image edit takes at most {MAX_INPUT_IMAGES} images.", "images")
    return _image_job(request, count)


def _image_job(request: ImageRequest, input_images: int) -> Job:
    if request.size not in (None, "auto") and not _SIZE.match(request.size):
        raise InvalidBody("`size` must be `auto` or WIDTHxHEIGHT, such as 1024x1024.", "size")
    if request.quality not in _QUALITIES:
        raise InvalidBody(f"Invalid value for `quality`: {request.quality!r}.", "quality")
    if request.background not in _BACKGROUNDS:
        raise InvalidBody(f"Invalid value for `background`: {request.background!r}.", "background")
    if request.response_format not in (None, "b64_json", "url"):
        raise InvalidBody("`response_format` must be `b64_json` or `url`.", "response_format")
    words = len(request.prompt.split())
    tokens = words + input_images * INPUT_IMAGE_TOKENS
    return Job(request.model, tokens, None, request.n, (request, words))


def _check_reference(ref: ImageRef, param: str) -> None:
    if (ref.image_url is None) == (ref.file_id is None):
        raise InvalidBody(f"`{param}` must have exactly one of `image_url` or `file_id`.", param)
    if ref.image_url is not None:
        _check_url(ref.image_url, f"{param}.image_url")
    elif not ref.file_id:
        raise InvalidBody(f"`{param}.file_id` must not be empty.", f"{param}.file_id")


def _check_url(url: str, param: str) -> None:
    """An input image is a web URL, or a base64 data URL whose payload must decode."""
    if url.startswith(("https://", "http://")):
        return
    if _DATA_URL.match(url):
        try:
            base64.b64decode(url.partition(",")[2], validate=True)
        except binascii.Error:
            raise InvalidBody(f"`{param}` is a data URL that is not valid base64.", param) from None
        return
    raise InvalidBody(
        f"`{param}` must be an https URL or a base64 data URL (data:image/png;base64,...).", param
    )


def write_image(job: Job, tokens: int, created: int) -> bodies.ImagesResponse:
    request, words = job.request
    images = [_png_base64(_colour(request.prompt, index)) for index in range(job.outputs)]
    as_url = request.response_format == "url"
    data = [
        bodies.ImageData(url=f"data:image/png;base64,{image}")
        if as_url
        else bodies.ImageData(b64_json=image)
        for image in images
    ]
    output_tokens = tokens * job.outputs
    usage = bodies.ImageUsage(
        input_tokens=job.prompt_tokens,
        input_tokens_details=bodies.ImageTokensDetails(
            image_tokens=job.prompt_tokens - words, text_tokens=words
        ),
        output_tokens=output_tokens,
        output_tokens_details=bodies.ImageTokensDetails(image_tokens=output_tokens, text_tokens=0),
        total_tokens=job.prompt_tokens + output_tokens,
    )
    return bodies.ImagesResponse(
        created=created,
        background=_BACKGROUNDS[request.background],
        data=data,
        quality=_QUALITIES[request.quality],
        size="1024x1024" if request.size in (None, "auto") else request.size,
        usage=usage,
    )


def _colour(prompt: str, index: int) -> bytes:
    return hashlib.shake_128(f"{index}/{prompt}".encode()).digest(3)


@functools.lru_cache(maxsize=1024)
def _png_base64(rgb: bytes) -> str:
    """A square PNG of one colour (8-bit RGB, no filter), base64-encoded."""
    row = b"\x00" + rgb * IMAGE_SIDE_PIXELS
    header = struct.pack(">IIBBBBB", IMAGE_SIDE_PIXELS, IMAGE_SIDE_PIXELS, 8, 2, 0, 0, 0)
    png = b"".join(
        (
            b"\x89PNG\r\n\x1a\n",
            _chunk(b"IHDR", header),
            _chunk(b"IDAT", zlib.compress(row * IMAGE_SIDE_PIXELS)),
            _chunk(b"IEND", b""),
        )
    )
    return base64.b64encode(png).decode()


def _chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data)
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def read_video(raw: bytes) -> Job:
    request: VideoRequest = decode(raw, _video_decoder)
    seconds = str(request.seconds)
    if not _SECONDS.match(seconds):
        raise InvalidBody("`seconds` must be a whole number of seconds, such as 4.", "seconds")
    if not _SIZE.match(request.size):
        raise InvalidBody("`size` must be WIDTHxHEIGHT, such as 720x1280.", "size")
    request.seconds = seconds
    return Job(request.model, len(request.prompt.split()), None, 1, request)


def write_video(job: Job, _tokens: int, created: int) -> bodies.Video:
    request: VideoRequest = job.request
    return bodies.Video(
        id=new_id("video_"),
        model=job.model,
        status="completed",
        progress=100,
        created_at=created,
        completed_at=created,
        expires_at=created + VIDEO_EXPIRY_SECONDS,
        prompt=request.prompt,
        seconds=str(request.seconds),
        size=request.size,
    )


MEDIA_ENDPOINTS: dict[str, Endpoint] = {
    "/v1/images/generations": Endpoint(read_image, write_image),
    "/v1/images/edits": Endpoint(read_image_edit, write_image),
    "/v1/videos": Endpoint(read_video, write_video),
}
