"""API keys: stored as a digest plus a visible prefix, never in full."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class ApiKeyRepository(Repository):
    collection_name = "api_keys"
    indexes = (
        IndexModel([("key_hash", ASCENDING)], unique=True, name="key_hash_unique"),
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
    )

    async def create(
        self, *, user_id: ObjectId, model_id: ObjectId | None, name: str, key_hash: str, prefix: str
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "user_id": user_id,
            "model_id": model_id,
            "name": name,
            "key_hash": key_hash,
            "key_prefix": prefix,
            "created_at": utcnow(),
            "last_used_at": None,
        }
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def find_by_hash(self, key_hash: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"key_hash": key_hash})

    async def exists(self, key_id: ObjectId) -> bool:
        return await self.collection.find_one({"_id": key_id}, projection={"_id": 1}) is not None

    async def list_for(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id}
        cursor = self.collection.find(query).sort("created_at", DESCENDING).skip(offset).limit(limit)
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def delete(self, user_id: ObjectId, key_id: ObjectId) -> bool:
        result = await self.collection.delete_one({"_id": key_id, "user_id": user_id})
        return result.deleted_count == 1

    async def delete_for_model(self, user_id: ObjectId, model_id: ObjectId) -> int:
        result = await self.collection.delete_many({"user_id": user_id, "model_id": model_id})
        return result.deleted_count

    async def touch(self, key_id: ObjectId) -> None:
        await self.collection.update_one({"_id": key_id}, {"$set": {"last_used_at": utcnow()}})
