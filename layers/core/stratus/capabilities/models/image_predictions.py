"""Predictions with trained image classifiers: checked here, run by the inference worker (the API never
loads torch). Images come as bytes (multipart) or base64 (JSON); either way each is bounded in size
before it is sent, and the worker bounds its pixels before decoding it."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from typing import Any

from stratus.capabilities.training import images as spec
from stratus.capabilities.training.objective import objective_of
from stratus.errors import Conflict, PayloadTooLarge, ServiceUnavailable, ValidationFailed
from stratus.ports.inference import InferenceBackend, InferencePending, InferenceRequest

# The inference worker's task for these models (stratus_worker.vision.serve.TASK).
TASK = "trained-image-classification"


def is_image_model(model: Mapping[str, Any]) -> bool:
    return objective_of(model) == spec.IMAGE_OBJECTIVE


def too_large(index: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"Image {index} exceeds {spec.MAX_PREDICT_IMAGE_BYTES // (1024 * 1024)} MB",
        code="IMAGE_TOO_LARGE",
        details={"max_bytes": spec.MAX_PREDICT_IMAGE_BYTES},
    )


def from_base64(inputs: list[Any]) -> list[bytes]:
    """JSON `input`/`inputs` for an image model: base64 strings (a data: URL prefix is allowed)."""
    images = []
    for index, item in enumerate(inputs):
        if not isinstance(item, str):
            raise ValidationFailed(
                f"inputs[{index}] must be a base64-encoded image for an image model",
                details=[{"field": f"inputs.{index}", "message": "must be a base64 string"}],
            )
        if len(item) > spec.MAX_PREDICT_IMAGE_BYTES * 4 // 3 + 64:
            raise too_large(index)
        try:
            images.append(
                base64.b64decode(item.split(",", 1)[-1] if item.startswith("data:") else item, validate=True)
            )
        except (binascii.Error, ValueError):
            raise ValidationFailed(
                f"inputs[{index}] is not valid base64",
                details=[{"field": f"inputs.{index}", "message": "not valid base64"}],
            ) from None
    return images


async def classify(
    backend: InferenceBackend | None, model: Mapping[str, Any], images: list[bytes], *, wait_s: float
) -> list[dict[str, Any]]:
    """Seed 001's predictions (`class`, `confidence`, and the `top` classes) for each image, in order."""
    if backend is None:
        raise ServiceUnavailable("Image predictions need the inference worker, which is not configured")
    if not images:
        raise ValidationFailed(
            "Send an image: multipart `image` (or `images`), or base64 in `input`/`inputs`",
            details=[{"field": "image", "message": "required"}],
        )
    if len(images) > spec.MAX_PREDICT_IMAGES:
        raise ValidationFailed(
            f"At most {spec.MAX_PREDICT_IMAGES} images per request",
            details=[{"field": "images", "message": "too many"}],
        )
    for index, data in enumerate(images):
        if len(data) > spec.MAX_PREDICT_IMAGE_BYTES:
            raise too_large(index)
        if not data:
            raise ValidationFailed(
                f"Image {index} is empty", details=[{"field": f"images.{index}", "message": "empty"}]
            )
    descriptor = (model.get("artifacts") or {}).get("model")
    if not descriptor:
        raise Conflict("This model has no trained weights to predict with", code="MODEL_NOT_PREDICTABLE")
    request = InferenceRequest(
        task=TASK,
        model=str(model["_id"]),
        inputs=[{"image": base64.b64encode(data).decode()} for data in images],
        source={"descriptor": descriptor},
    )
    try:
        result = await backend.invoke(request, wait_s=wait_s)
    except InferencePending:
        raise ServiceUnavailable(
            "The model is still loading on the inference worker; retry shortly"
        ) from None
    return [
        {"class": out["class"], "confidence": out["confidence"], "top": out.get("top", [])}
        for out in result.outputs
    ]
