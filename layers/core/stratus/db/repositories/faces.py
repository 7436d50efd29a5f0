"""Registered faces (seed 002): a name and a 128-d embedding per face, per user. No photo is kept."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class FaceRepository(Repository):
    collection_name = "faces"
    indexes = (IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_newest"),)

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {"created_at": utcnow(), **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def count_owned(self, user_id: ObjectId) -> int:
        return await self.collection.count_documents({"user_id": user_id})

    async def embeddings(self, user_id: ObjectId, *, limit: int) -> list[dict[str, Any]]:
        """Every face of one user (only theirs: matching never sees another user's faces)."""
        cursor = self.collection.find({"user_id": user_id}, {"name": 1, "embedding": 1}).limit(limit)
        return await cursor.to_list()

    async def list_owned(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id}
        cursor = self.collection.find(query, {"embedding": 0}).sort("_id", DESCENDING)
        return await cursor.skip(offset).limit(limit).to_list(), await self.collection.count_documents(query)

    async def delete_owned(self, user_id: ObjectId, face_id: ObjectId) -> bool:
        return (await self.collection.delete_one({"_id": face_id, "user_id": user_id})).deleted_count == 1
