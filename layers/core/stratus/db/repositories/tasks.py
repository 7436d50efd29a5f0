"""Inference task records: what was asked, by whom, and the result once it is there (kept 7 days)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class TaskRepository(Repository):
    collection_name = "inference_tasks"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_newest"),
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=7 * 24 * 3600, name="ttl_7d"),
        # A completion notification names an object a pending task is watching.
        IndexModel([("watch", ASCENDING)], name="watch", partialFilterExpression={"status": "pending"}),
    )

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {"created_at": utcnow(), **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, task_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": task_id, "user_id": user_id})

    async def pending_watching(self, key: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"status": "pending", "watch": key})

    async def finish(self, task_id: ObjectId, changes: dict[str, Any]) -> dict[str, Any] | None:
        """Record the outcome once; a second outcome for the same task is ignored."""
        return await self.collection.find_one_and_update(
            {"_id": task_id, "status": "pending"},
            {"$set": {**changes, "completed_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )
