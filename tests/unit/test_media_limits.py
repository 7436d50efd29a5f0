"""Media generation's limits are written once (capabilities/media/spec.py): the request schemas and the
worker's check refuse the same values, an uploaded image is judged by its header (a decompression bomb
is refused before anything is stored), and the kinds ask for a GPU."""

from __future__ import annotations

import io
import struct
import zlib
from typing import Any

import pytest
from PIL import Image
from pydantic import ValidationError

from stratus import capabilities
from stratus.capabilities.media import spec
from stratus.capabilities.media.imageinfo import image_size
from stratus.capabilities.media.schemas import OpenAIImageRequest, TextToImageRequest, TextToVideoRequest
from stratus.capabilities.media.service import check_image, fit_size
from stratus.errors import DomainError, PayloadTooLarge, ValidationFailed

GOOD = {
    "prompt": "p",
    "width": 512,
    "height": 512,
    "num_inference_steps": 50,
    "guidance_scale": 7.5,
    "seed": 1,
}


@pytest.mark.parametrize(
    ("field", "value"),
    [("width", 100), ("width", 1032), ("height", 56), ("num_inference_steps", 0),
     ("num_inference_steps", spec.STEPS.le + 1), ("guidance_scale", 31.0), ("guidance_scale", -1.0),
     ("seed", -1), ("seed", spec.MAX_SEED + 1), ("prompt", "x" * (spec.MAX_PROMPT_CHARS + 1))],
)  # fmt: skip
def test_schema_and_worker_refuse_the_same_values(field: str, value: Any) -> None:
    with pytest.raises(ValidationError) as caught:
        TextToImageRequest(**GOOD | {field: value})
    assert caught.value.errors()[0]["loc"] == (field,)
    with pytest.raises(ValidationFailed) as refused:
        spec.check_params(spec.TEXT_TO_IMAGE, GOOD | {field: value})
    assert refused.value.details[0]["field"] == field


def test_limits_accept_their_bounds() -> None:
    for width in (spec.IMAGE_SIZE.ge, spec.IMAGE_SIZE.le):
        TextToImageRequest(**GOOD | {"width": width})
        spec.check_params(spec.TEXT_TO_IMAGE, GOOD | {"width": width})
    video = {"prompt": "p", "num_frames": spec.FRAMES.le, "fps": spec.FPS.le, "num_inference_steps": 1,
             "width": 64, "height": 64, "guidance_scale": 0.0, "seed": 0}  # fmt: skip
    TextToVideoRequest(**video)
    spec.check_params(spec.TEXT_TO_VIDEO, video)
    with pytest.raises(ValidationFailed):
        spec.check_params(spec.TEXT_TO_VIDEO, video | {"num_frames": spec.FRAMES.le + 1})
    with pytest.raises(ValidationFailed):
        spec.check_params(spec.IMAGE_TO_IMAGE, GOOD | {"strength": 1.5})
    with pytest.raises(ValidationError):
        OpenAIImageRequest(prompt="p", n=2)


def _png(size: tuple[int, int], fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size).save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.mark.parametrize(("fmt", "name"), [("PNG", "png"), ("JPEG", "jpeg"), ("GIF", "gif"), ("BMP", "bmp"),
                                           ("WEBP", "webp")])  # fmt: skip
def test_header_sizes_match_pillow(fmt: str, name: str) -> None:
    assert image_size(_png((123, 45), fmt)) == (name, 123, 45)


def test_bad_uploads_are_refused_naming_the_field() -> None:
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + struct.pack(">I", 13)
        + b"IHDR"
        + ihdr
        + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    )
    cases: list[tuple[bytes, type[DomainError], str]] = [
        (b"", ValidationFailed, "EMPTY_FILE"),
        (b"hello, not an image", ValidationFailed, "NOT_AN_IMAGE"),
        (bomb, ValidationFailed, "IMAGE_TOO_LARGE"),
        (b"\x89PNG" + b"\0" * spec.MAX_IMAGE_BYTES, PayloadTooLarge, "FILE_TOO_LARGE"),
    ]
    for data, error, code in cases:
        with pytest.raises(error) as caught:
            check_image(data)
        assert caught.value.code == code and caught.value.details[0]["field"] == "image"
    assert check_image(_png((10, 10))) == ("png", 10, 10)


def test_source_images_fit_the_size_limits() -> None:
    assert fit_size(1200, 800, 512, spec.IMAGE_SIZE) == (512, 336)
    assert fit_size(30, 3000, 256, spec.VIDEO_SIZE) == (64, 256)


def test_generation_kinds_ask_for_a_gpu() -> None:
    kinds = capabilities.job_kinds()
    for name in spec.KIND_NAMES:
        kind = kinds.get(name)
        assert kind.resources.gpu and kind.worker == "stratus_worker.generation"
        assert (
            kind.webhooks.completed == "generation.completed" and kind.webhooks.failed == "generation.failed"
        )
