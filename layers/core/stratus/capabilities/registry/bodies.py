"""Reading a predict request's body by hand: it is JSON (any model) or multipart images (image models),
which one route cannot declare to FastAPI. Errors come out as FastAPI's would: 400 for malformed JSON,
422 naming the field, 413 for an oversized body or image."""

from __future__ import annotations

from typing import TypeVar

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile  # what request.form() holds (FastAPI's is a subclass)

from stratus.capabilities.models.image_predictions import too_large
from stratus.capabilities.training import images as spec
from stratus.errors import PayloadTooLarge

Body = TypeVar("Body", bound=BaseModel)
MULTIPART_OVERHEAD = 64 * 1024


async def read_json(request: Request, model: type[Body]) -> Body:
    raw = await request.body()
    try:
        return model.model_validate_json(raw or b"{}")
    except ValidationError as e:
        raise RequestValidationError(
            [{**error, "loc": ("body", *error["loc"])} for error in e.errors(include_url=False)]
        ) from None


async def read_images(request: Request) -> list[bytes]:
    """The `image` and `images` files of a multipart body, each bounded in size."""
    declared = request.headers.get("content-length")
    limit = spec.MAX_PREDICT_IMAGES * spec.MAX_PREDICT_IMAGE_BYTES + MULTIPART_OVERHEAD
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(
            f"The request exceeds {limit} bytes", code="IMAGE_TOO_LARGE", details={"max_bytes": limit}
        )
    form = await request.form(max_files=spec.MAX_PREDICT_IMAGES + 1, max_fields=16)
    try:
        files = [f for f in [*form.getlist("image"), *form.getlist("images")] if isinstance(f, UploadFile)]
        images = []
        for index, upload in enumerate(files):
            if upload.size is not None and upload.size > spec.MAX_PREDICT_IMAGE_BYTES:
                raise too_large(index)
            images.append(await upload.read(spec.MAX_PREDICT_IMAGE_BYTES + 1))
            if len(images[-1]) > spec.MAX_PREDICT_IMAGE_BYTES:
                raise too_large(index)
        return images
    finally:
        await form.close()
