"""API keys a user creates for programmatic access (seed 003: bound to one model; seed 000: a login)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import NotFound
from stratus.security import api_keys


class ApiKeyService:
    def __init__(self, keys: ApiKeyRepository, models: ModelRepository) -> None:
        self._keys = keys
        self._models = models

    async def create(
        self, user_id: ObjectId, *, name: str, model_id: ObjectId | None
    ) -> tuple[dict[str, Any], str]:
        """Returns the record and the full key, which is shown this once and never stored."""
        if model_id is not None and await self._models.get_owned(user_id, model_id) is None:
            raise NotFound("Model not found")
        key = api_keys.generate()
        record = await self._keys.create(
            user_id=user_id,
            model_id=model_id,
            name=name,
            key_hash=api_keys.digest(key),
            prefix=api_keys.visible_prefix(key),
        )
        return record, key

    async def list(self, user_id: ObjectId, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        return await self._keys.list_for(user_id, limit=limit, offset=offset)

    async def delete(self, user_id: ObjectId, key_id: ObjectId) -> None:
        if not await self._keys.delete(user_id, key_id):
            raise NotFound("API key not found")
