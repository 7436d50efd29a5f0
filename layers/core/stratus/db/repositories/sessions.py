"""Refresh-token families and revocations.

Each login starts a family; each refresh spends one token and issues the next in the same family.
Presenting a spent token again means it leaked: the whole family is revoked (reuse detection).
Revocations (access-token ids and whole families) live in a TTL-indexed collection that cleans itself.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class RefreshTokenRepository(Repository):
    collection_name = "refresh_tokens"
    indexes = (
        IndexModel([("family", ASCENDING)], name="family"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    )

    async def record(self, *, jti: str, user_id: str, family: str, expires_at: datetime) -> None:
        await self.collection.insert_one(
            {"_id": jti, "user_id": user_id, "family": family, "expires_at": expires_at, "spent_at": None}
        )

    async def spend(self, jti: str) -> dict[str, Any] | None:
        """Atomically mark the token spent; None if it was unknown or already spent."""
        return await self.collection.find_one_and_update(
            {"_id": jti, "spent_at": None}, {"$set": {"spent_at": utcnow()}}
        )

    async def find(self, jti: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": jti})

    async def delete_family(self, family: str) -> int:
        result = await self.collection.delete_many({"family": family})
        return result.deleted_count


class RevocationRepository(Repository):
    collection_name = "revocations"
    indexes = (IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),)

    async def revoke(self, keys: list[str], *, expires_at: datetime, reason: str) -> None:
        for key in keys:
            await self.collection.update_one(
                {"_id": key},
                {"$set": {"expires_at": expires_at, "reason": reason}},
                upsert=True,
            )

    async def any_revoked(self, keys: list[str]) -> bool:
        return await self.collection.find_one({"_id": {"$in": keys}}, projection={"_id": 1}) is not None
