"""Predictions with trained tabular models (seed 001's POST /models/{id}/predict).

Training exports a portable model (plain weights and preprocessing in JSON); evaluating a small MLP on
a few rows is a few thousand multiply-adds in pure Python, so it runs in the API without torch or numpy
and without a worker round trip. Larger models (NLP, vision) are served by workers instead: trained
image classifiers through `image_predictions`, on the inference worker.
"""

from __future__ import annotations

import asyncio
import json
from collections import OrderedDict
from typing import Any

from bson import ObjectId

from stratus.capabilities.models import image_predictions
from stratus.capabilities.models.service import ModelService
from stratus.errors import Conflict, NotFound, ValidationFailed
from stratus.ml.portable_mlp import PortableMLP, load
from stratus.ports.inference import InferenceBackend
from stratus.ports.storage import ObjectStorage
from stratus.services.quota import QuotaService

MAX_BATCH = 1000


class PredictionService:
    def __init__(
        self,
        models: ModelService,
        storage: ObjectStorage,
        quota: QuotaService,
        *,
        cache_size: int = 32,
        inference: InferenceBackend | None = None,
        image_wait_s: float = 25.0,
    ) -> None:
        self._models = models
        self._storage = storage
        self._quota = quota
        self._inference = inference  # image models predict on the inference worker
        self._image_wait_s = image_wait_s
        self._cache: OrderedDict[tuple[str, str], PortableMLP] = OrderedDict()
        self._cache_size = cache_size

    async def predict(self, user_id: ObjectId, model_id: ObjectId, inputs: list[Any]) -> list[dict[str, Any]]:
        model = await self._models.get(user_id, model_id)
        if image_predictions.is_image_model(model):
            return await self._images(user_id, model, image_predictions.from_base64(inputs))
        key = (model.get("artifacts") or {}).get("model")
        if model.get("source") != "trained" or not key:
            raise Conflict("This model has no trained weights to predict with", code="MODEL_NOT_PREDICTABLE")
        if not inputs:
            raise ValidationFailed(
                "inputs must not be empty", details=[{"field": "inputs", "message": "empty"}]
            )
        if len(inputs) > MAX_BATCH:
            raise ValidationFailed(
                f"At most {MAX_BATCH} inputs per request",
                details=[{"field": "inputs", "message": "too many"}],
            )
        mlp = await self._load(str(model_id), key)
        rows = [self._as_row(mlp, item, index) for index, item in enumerate(inputs)]
        # Pure-Python matrix products: off the event loop, so other requests keep flowing.
        results = await asyncio.to_thread(mlp.predict, rows)
        # Counted once the prediction succeeded: a refused input costs the user nothing.
        await self._quota.consume_query(user_id)
        predictions = []
        for prediction in results:
            if prediction.probabilities is not None:
                out: dict[str, Any] = {
                    "class": prediction.label,
                    "confidence": prediction.confidence,
                    "probabilities": prediction.probabilities,
                }
            else:
                out = {"value": prediction.label, "confidence": None}
            predictions.append(out)
        return predictions

    async def predict_images(
        self, user_id: ObjectId, model_id: ObjectId, images: list[bytes]
    ) -> list[dict[str, Any]]:
        """Uploaded image files (multipart) for an image model."""
        model = await self._models.get(user_id, model_id)
        if not image_predictions.is_image_model(model):
            raise ValidationFailed(
                "This model takes feature values, not images: send JSON `input`/`inputs`",
                code="NOT_AN_IMAGE_MODEL",
                details=[{"field": "image", "message": "the model is not an image classifier"}],
            )
        return await self._images(user_id, model, images)

    async def _images(
        self, user_id: ObjectId, model: dict[str, Any], images: list[bytes]
    ) -> list[dict[str, Any]]:
        predictions = await image_predictions.classify(
            self._inference, model, images, wait_s=self._image_wait_s
        )
        await self._quota.consume_query(user_id)
        return predictions

    async def _load(self, model_id: str, key: str) -> PortableMLP:
        cached = self._cache.get((model_id, key))
        if cached is not None:
            self._cache.move_to_end((model_id, key))
            return cached
        try:
            raw = await self._storage.get_bytes(key)
        except NotFound as e:
            raise Conflict(
                "The model's weights are missing from storage", code="MODEL_ARTIFACT_MISSING"
            ) from e
        mlp = await asyncio.to_thread(lambda: load(json.loads(raw)))
        self._cache[(model_id, key)] = mlp
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return mlp

    @staticmethod
    def _as_row(mlp: PortableMLP, item: Any, index: int) -> dict[str, Any]:
        """Seed 001 sends positional lists in feature order; objects keyed by column name also work."""
        if isinstance(item, dict):
            return item
        if isinstance(item, list):
            if len(item) != len(mlp.features):
                raise ValidationFailed(
                    f"inputs[{index}] has {len(item)} values; the model expects {len(mlp.features)}: "
                    + ", ".join(mlp.features),
                    details=[{"field": f"inputs.{index}", "message": f"expected {len(mlp.features)} values"}],
                )
            return dict(zip(mlp.features, item, strict=True))
        raise ValidationFailed(
            f"inputs[{index}] must be a list of feature values or an object keyed by feature name",
            details=[{"field": f"inputs.{index}", "message": "must be a list or an object"}],
        )
