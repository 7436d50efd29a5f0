"""Datasets: metadata in MongoDB, bytes in object storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository
from stratus.errors import NotFound
from stratus.schemas.common import utcnow

# How the API's sort keys map to stored fields.
SORT_FIELDS = {
    "name": "name",
    "created_at": "created_at",
    "uploaded_at": "created_at",
    "size": "file_size",
    "file_size": "file_size",
}


class DatasetRepository(Repository):
    collection_name = "datasets"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        IndexModel([("user_id", ASCENDING), ("name", ASCENDING)], name="user_name"),
        IndexModel([("user_id", ASCENDING), ("file_size", ASCENDING)], name="user_size"),
        # A presigned upload that is never confirmed disappears on its own.
        IndexModel([("upload_expires_at", ASCENDING)], expireAfterSeconds=0, name="pending_upload_ttl"),
    )

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        doc = {"created_at": now, "updated_at": now, **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": dataset_id, "user_id": user_id})

    async def require_owned(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any]:
        """The user's dataset. Another user's is answered exactly as a missing one, so ids reveal nothing."""
        doc = await self.get_owned(user_id, dataset_id)
        if doc is None:
            raise NotFound("Dataset not found")
        return doc

    async def find_by_name(self, user_id: ObjectId, name: str) -> dict[str, Any] | None:
        """The newest of the user's datasets with this name (or file name)."""
        query = {
            "user_id": user_id,
            "$or": [{"name": name}, {"file_name": name}],
            "status": {"$ne": "awaiting_upload"},
        }
        return await self.collection.find_one(query, sort=[("created_at", -1)])

    async def get(self, dataset_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": dataset_id})

    async def list_owned(
        self, user_id: ObjectId, *, sort_by: str, descending: bool, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {"user_id": user_id, "status": {"$ne": "awaiting_upload"}}
        field = SORT_FIELDS[sort_by]
        order = DESCENDING if descending else ASCENDING
        # _id breaks ties so pages never repeat or skip items.
        cursor = self.collection.find(query).sort([(field, order), ("_id", order)]).skip(offset).limit(limit)
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def transition(
        self,
        dataset_id: ObjectId,
        *,
        from_status: str | tuple[str, ...],
        changes: dict[str, Any],
        unset: tuple[str, ...] = (),
    ) -> dict[str, Any] | None:
        """Move a dataset between statuses atomically; None when it is not in `from_status` (any more)."""
        expected = [from_status] if isinstance(from_status, str) else list(from_status)
        update: dict[str, Any] = {"$set": {**changes, "updated_at": utcnow()}}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        return await self.collection.find_one_and_update(
            {"_id": dataset_id, "status": {"$in": expected}}, update, return_document=ReturnDocument.AFTER
        )

    async def delete_owned(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one_and_delete({"_id": dataset_id, "user_id": user_id})

    async def delete(self, dataset_id: ObjectId) -> None:
        await self.collection.delete_one({"_id": dataset_id})

    async def stale_processing(self, older_than: datetime, limit: int = 100) -> list[dict[str, Any]]:
        cursor = self.collection.find({"status": "processing", "updated_at": {"$lt": older_than}}).limit(
            limit
        )
        return await cursor.to_list()
