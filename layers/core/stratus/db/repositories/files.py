"""Stored files (seed 004): metadata here, bytes in object storage."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class FileRepository(Repository):
    collection_name = "files"
    indexes = (IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),)

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {"created_at": utcnow(), **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, file_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": file_id, "user_id": user_id})

    async def list_owned(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id}
        cursor = self.collection.find(query).sort([("created_at", DESCENDING), ("_id", DESCENDING)])
        return await cursor.skip(offset).limit(limit).to_list(), await self.collection.count_documents(query)

    async def delete_owned(self, user_id: ObjectId, file_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one_and_delete({"_id": file_id, "user_id": user_id})
