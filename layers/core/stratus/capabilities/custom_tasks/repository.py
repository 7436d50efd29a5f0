"""Saved custom tasks, and the per-user run slots that bound concurrent executions."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class CustomTaskRepository(Repository):
    collection_name = "custom_tasks"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        IndexModel([("user_id", ASCENDING), ("tags", ASCENDING)], name="user_tags"),
        IndexModel([("user_id", ASCENDING), ("name_key", ASCENDING)], name="user_name"),
    )

    async def create(self, user_id: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        doc = {**fields, "user_id": user_id, "name_key": fields["name"].lower(), "created_at": now,
               "updated_at": now, "runs": 0, "last_run_at": None}  # fmt: skip
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, task_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": task_id, "user_id": user_id})

    async def get_many(self, user_id: ObjectId, task_ids: list[ObjectId]) -> list[dict[str, Any]]:
        return await self.collection.find({"user_id": user_id, "_id": {"$in": task_ids}}).to_list()

    async def names(self, user_id: ObjectId) -> set[str]:
        docs = await self.collection.find({"user_id": user_id}, {"name_key": 1}).to_list()
        return {str(d["name_key"]) for d in docs}

    async def search(
        self,
        user_id: ObjectId,
        *,
        search: str | None,
        tags: list[str],
        model: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        query: dict[str, Any] = {"user_id": user_id}
        if search:
            pattern = {"$regex": re.escape(search), "$options": "i"}
            query["$or"] = [{"name": pattern}, {"description": pattern}]
        if tags:
            query["tags"] = {"$all": tags}
        if model:
            query["model_name"] = model
        cursor = (
            self.collection.find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def update(
        self, user_id: ObjectId, task_id: ObjectId, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        if "name" in changes:
            changes = {**changes, "name_key": changes["name"].lower()}
        return await self.collection.find_one_and_update(
            {"_id": task_id, "user_id": user_id},
            {"$set": {**changes, "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete(self, user_id: ObjectId, task_id: ObjectId) -> bool:
        return (await self.collection.delete_one({"_id": task_id, "user_id": user_id})).deleted_count == 1

    async def count_run(self, task_id: ObjectId) -> None:
        await self.collection.update_one(
            {"_id": task_id}, {"$inc": {"runs": 1}, "$set": {"last_run_at": utcnow()}}
        )

    async def facets(self, user_id: ObjectId) -> dict[str, Any]:
        """How many tasks the user has, by tag and by model."""
        pipeline: list[dict[str, Any]] = [
            {"$match": {"user_id": user_id}},
            {
                "$facet": {
                    "total": [{"$count": "n"}],
                    "by_tag": [{"$unwind": "$tags"}, {"$group": {"_id": "$tags", "n": {"$sum": 1}}}],
                    "by_model": [{"$group": {"_id": {"$ifNull": ["$model_name", None]}, "n": {"$sum": 1}}}],
                    "runs": [{"$group": {"_id": None, "n": {"$sum": "$runs"}}}],
                }
            },
        ]
        docs = await (await self.collection.aggregate(pipeline)).to_list()
        facet = docs[0] if docs else {}
        return {
            "total": facet["total"][0]["n"] if facet.get("total") else 0,
            "by_tag": {str(d["_id"]): d["n"] for d in facet.get("by_tag", [])},
            "by_model": {str(d["_id"] or "none"): d["n"] for d in facet.get("by_model", [])},
            "saved_task_runs": facet["runs"][0]["n"] if facet.get("runs") else 0,
        }


class RunSlotRepository(Repository):
    """One document per user holding a lease per execution in flight. A lease carries an expiry (the
    run's longest possible life), so a crashed API process or a run whose end nobody saw frees its slot."""

    collection_name = "custom_task_slots"
    indexes = ()

    async def acquire(self, user_id: ObjectId, run_id: ObjectId, *, limit: int, ttl_s: float) -> bool:
        now = utcnow()
        lease = {"id": run_id, "expires": now + timedelta(seconds=ttl_s)}
        await self.collection.update_one({"_id": user_id}, {"$pull": {"leases": {"expires": {"$lt": now}}}})
        for _ in range(2):
            # Atomic: the push applies only while fewer than `limit` leases are held.
            taken = await self.collection.update_one(
                {"_id": user_id, f"leases.{limit - 1}": {"$exists": False}}, {"$push": {"leases": lease}}
            )
            if taken.matched_count:
                return True
            if await self.collection.count_documents({"_id": user_id}, limit=1):
                return False  # the document is there: the slots are full
            try:
                await self.collection.insert_one({"_id": user_id, "leases": [lease]})
                return True
            except DuplicateKeyError:
                continue  # created meanwhile by another request: try the conditional push again
        return False

    async def release(self, user_id: ObjectId, run_id: ObjectId) -> None:
        await self.collection.update_one({"_id": user_id}, {"$pull": {"leases": {"id": run_id}}})

    async def next_expiry(self, user_id: ObjectId) -> datetime | None:
        doc = await self.collection.find_one({"_id": user_id})
        expiries = [lease["expires"] for lease in (doc or {}).get("leases", [])]
        return min(expiries) if expiries else None


class CustomRunStats(Repository):
    """Custom-task runs, read from the inference task records (kept 7 days) they are stored as."""

    collection_name = "inference_tasks"  # stratus.db.repositories.tasks.TaskRepository's collection
    indexes = ()

    async def summary(self, user_id: ObjectId, task: str) -> dict[str, Any]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"user_id": user_id, "task": task}},
            {
                "$group": {
                    "_id": None,
                    "runs": {"$sum": 1},
                    "completed": {"$sum": {"$cond": [{"$eq": ["$status", "completed"]}, 1, 0]}},
                    "failed": {"$sum": {"$cond": [{"$eq": ["$status", "failed"]}, 1, 0]}},
                    "pending": {"$sum": {"$cond": [{"$eq": ["$status", "pending"]}, 1, 0]}},
                    "mean_duration_ms": {"$avg": "$duration_ms"},
                }
            },
        ]
        docs = await (await self.collection.aggregate(pipeline)).to_list()
        if not docs:
            return {"runs": 0, "completed": 0, "failed": 0, "pending": 0, "mean_duration_ms": None}
        doc: dict[str, Any] = docs[0]
        doc.pop("_id", None)
        return doc

    async def failure_reasons(self, user_id: ObjectId, task: str) -> dict[str, int]:
        pipeline: list[dict[str, Any]] = [
            {"$match": {"user_id": user_id, "task": task, "status": "failed"}},
            {"$group": {"_id": {"$ifNull": ["$reason", "error"]}, "n": {"$sum": 1}}},
        ]
        return {
            str(d["_id"]): int(d["n"]) for d in await (await self.collection.aggregate(pipeline)).to_list()
        }
