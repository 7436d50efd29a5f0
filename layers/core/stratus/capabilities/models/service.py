"""The model registry: the records a user owns (registered by hand, or produced by training)."""

from __future__ import annotations

import contextlib
from typing import Any

from bson import ObjectId

from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import DomainError, InvalidInput, NotFound
from stratus.ports.storage import ObjectStorage


class ModelService:
    def __init__(
        self,
        models: ModelRepository,
        *,
        datasets: DatasetRepository,
        api_keys: ApiKeyRepository | None = None,
        jobs: JobRepository | None = None,
        storage: ObjectStorage | None = None,
    ) -> None:
        self._models = models
        self._datasets = datasets
        self._api_keys = api_keys
        self._jobs = jobs
        self._storage = storage

    async def register(self, user_id: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
        """A record registered by hand. The dataset it names must be the user's: the same 404 as training."""
        if fields.get("dataset_id") is not None:
            await self._datasets.require_owned(user_id, fields["dataset_id"])
        return await self._models.create(user_id, {"source": "user", **fields})

    async def get(self, user_id: ObjectId, model_id: ObjectId) -> dict[str, Any]:
        model = await self._models.get_owned(user_id, model_id)
        if model is None:
            raise NotFound("Model not found")
        return model

    async def list(
        self,
        user_id: ObjectId,
        *,
        limit: int,
        offset: int,
        filters: dict[str, Any] | None = None,
        sort: list[tuple[str, int]] | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._models.list_owned(user_id, filters=filters, sort=sort, limit=limit, offset=offset)

    async def update(self, user_id: ObjectId, model_id: ObjectId, changes: dict[str, Any]) -> dict[str, Any]:
        if not changes:
            raise InvalidInput("No fields to update", code="NO_CHANGES")
        model = await self._models.update_owned(user_id, model_id, changes)
        if model is None:
            raise NotFound("Model not found")
        return model

    async def delete(self, user_id: ObjectId, model_id: ObjectId) -> None:
        """The record, the keys bound to it, the job's pointer to it and its stored files."""
        model = await self._models.delete_owned(user_id, model_id)
        if model is None:
            raise NotFound("Model not found")
        if self._api_keys is not None:
            await self._api_keys.delete_for_model(user_id, model_id)
        if self._jobs is not None and model.get("job_id"):
            await self._jobs.forget_model(model["job_id"])
        artifacts = model.get("artifacts") or {}
        if self._storage is None:
            return
        with contextlib.suppress(DomainError):
            if artifacts.get("model"):  # a trained model's weights
                await self._storage.delete(artifacts["model"])
            if artifacts.get("snapshot"):  # a downloaded model's files
                await self._storage.delete_prefix(artifacts["snapshot"].rstrip("/") + "/")
