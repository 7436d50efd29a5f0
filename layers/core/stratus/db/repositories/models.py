"""The model registry's records: user-registered (seed 003), trained (seed 001) and hub/base models (seed 000)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class ModelRepository(Repository):
    collection_name = "models"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        IndexModel(
            [("user_id", ASCENDING), ("source", ASCENDING), ("task", ASCENDING)], name="user_source_task"
        ),
        IndexModel(
            [("user_id", ASCENDING), ("source", ASCENDING), ("name_key", ASCENDING)], name="user_name"
        ),
        # One trained model per job, however often its result event is delivered.
        IndexModel(
            [("job_id", ASCENDING)],
            unique=True,
            name="job_unique",
            partialFilterExpression={"job_id": {"$type": "objectId"}},
        ),
    )

    async def create(self, user_id: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
        doc = {**fields, "user_id": user_id, "created_at": utcnow(), "updated_at": utcnow()}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def register_for_job(
        self, user_id: ObjectId, job_id: ObjectId, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """Create the job's model once; later calls return the same record."""
        now = utcnow()
        query = {"job_id": job_id, "user_id": user_id}
        doc = await self.collection.find_one_and_update(
            query,
            {"$setOnInsert": {**fields, **query, "created_at": now, "updated_at": now}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        # Two concurrent upserts: the loser may get None although the record exists; read it.
        return doc or await self.collection.find_one(query) or {}

    async def get_owned(self, user_id: ObjectId, model_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": model_id, "user_id": user_id})

    async def register_checkpoint(
        self, user_id: ObjectId, job_id: ObjectId, step: int, fields: dict[str, Any]
    ) -> dict[str, Any]:
        """A fine-tune's checkpoint as its own model, once per (job, step); later calls return it. Not
        keyed by `job_id` (one model per job is the job's own result)."""
        now = utcnow()
        query = {"checkpoint_of": job_id, "checkpoint_step": step, "user_id": user_id}
        doc = await self.collection.find_one_and_update(
            query,
            {"$setOnInsert": {**fields, **query, "created_at": now, "updated_at": now}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        # The losing concurrent upsert may get None although the record exists (see register_for_job).
        return doc or await self.collection.find_one(query) or {}

    async def find_named(self, user_id: ObjectId, name: str, *, source: str) -> dict[str, Any] | None:
        """The user's newest model of `source` called `name` (hub names are case-insensitive)."""
        return await self.collection.find_one(
            {"user_id": user_id, "source": source, "name_key": name.lower()}, sort=[("_id", -1)]
        )

    async def names(
        self, user_id: ObjectId, *, source: str, status: str = "ready", task: str | None = None
    ) -> list[str]:
        """The user's model names of `source` (that can serve `task`, when given)."""
        query: dict[str, Any] = {"user_id": user_id, "source": source, "status": status}
        if task is not None:
            query["tasks"] = task
        docs = await self.collection.find(query, {"name": 1}).to_list()
        return sorted({str(d["name"]) for d in docs})

    async def list_owned(
        self,
        user_id: ObjectId,
        *,
        filters: dict[str, Any] | None = None,
        sort: list[tuple[str, int]] | None = None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id, **(filters or {})}
        cursor = (
            self.collection.find(query).sort(sort or [("created_at", DESCENDING)]).skip(offset).limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def update_owned(
        self, user_id: ObjectId, model_id: ObjectId, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self.collection.find_one_and_update(
            {"_id": model_id, "user_id": user_id},
            {"$set": {**changes, "updated_at": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def delete_owned(self, user_id: ObjectId, model_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one_and_delete({"_id": model_id, "user_id": user_id})
