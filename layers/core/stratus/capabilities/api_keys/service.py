"""API keys a user creates for programmatic access (seed 003: bound to one model; seed 000: a login)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bson import ObjectId

from stratus.capabilities.identity.service import api_key_revocation
from stratus.db.repositories.api_keys import ApiKeyRepository
from stratus.db.repositories.models import ModelRepository
from stratus.db.repositories.sessions import RevocationRepository
from stratus.errors import NotFound
from stratus.security import api_keys

# How long the revocation of a deleted key's sessions is kept when the composition root does not say: the
# default refresh-token lifetime. Refreshing a key's session also checks that the key still exists, so a
# shorter-lived record only has to outlast the access tokens issued before the key was deleted.
DEFAULT_SESSION_TTL_S = 14 * 24 * 3600


class ApiKeyService:
    def __init__(
        self,
        keys: ApiKeyRepository,
        models: ModelRepository,
        *,
        revocations: RevocationRepository | None = None,
        session_ttl_s: int = DEFAULT_SESSION_TTL_S,
    ) -> None:
        self._keys = keys
        self._models = models
        # The revocations collection lives in the keys' database; the container's repository owns its index.
        self._revocations = revocations or RevocationRepository(keys.db)
        self._session_ttl_s = session_ttl_s

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
        """Delete the key and end every session opened with it (`POST /auth/login {"api_key"}`): its
        access tokens stop authenticating and its refresh tokens stop refreshing."""
        if not await self._keys.delete(user_id, key_id):
            raise NotFound("API key not found")
        await self._revocations.revoke(
            [api_key_revocation(str(key_id))],
            expires_at=datetime.now(UTC) + timedelta(seconds=self._session_ttl_s),
            reason="API key deleted",
        )
