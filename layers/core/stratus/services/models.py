"""The model registry: the records a user owns (registered by hand, or produced by training)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from stratus.db.repositories.models import ModelRepository
from stratus.errors import InvalidInput, NotFound


class ModelService:
    def __init__(self, models: ModelRepository) -> None:
        self._models = models

    async def register(self, user_id: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
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
        if await self._models.delete_owned(user_id, model_id) is None:
            raise NotFound("Model not found")
