"""Jobs of every kind and their event logs.

Statuses move only through stratus.jobs.store.JobStore, which derives each update's allowed source
statuses from the transition table (stratus.jobs.lifecycle); `update_if` is its primitive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stratus.db.repository import Repository
from stratus.jobs.lifecycle import ACTIVE, RUNNING
from stratus.schemas.common import utcnow


class JobRepository(Repository):
    collection_name = "jobs"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("_id", DESCENDING)], name="user_newest"),
        IndexModel([("user_id", ASCENDING), ("status", ASCENDING)], name="user_status"),
        IndexModel([("dataset_id", ASCENDING), ("status", ASCENDING)], name="dataset_status"),
        IndexModel([("backend", ASCENDING), ("external_id", ASCENDING)], name="backend_external"),
        IndexModel([("status", ASCENDING), ("updated_at", ASCENDING)], name="status_updated"),
        IndexModel(
            [("user_id", ASCENDING), ("kind", ASCENDING), ("model_key", ASCENDING)], name="user_model"
        ),
        IndexModel(
            [("user_id", ASCENDING), ("idempotency_key", ASCENDING)],
            unique=True,
            name="user_idempotency_key",
            partialFilterExpression={"idempotency_key": {"$type": "string"}},
        ),
    )

    async def insert(self, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Insert a job; with an idempotency key already used by this user, return that job instead."""
        now = utcnow()
        doc = {"created_at": now, "updated_at": now, "last_seq": 0, **doc}
        try:
            doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        except DuplicateKeyError:
            existing = await self.collection.find_one(
                {"user_id": doc["user_id"], "idempotency_key": doc.get("idempotency_key")}
            )
            if existing is None:
                raise
            return existing, False
        return doc, True

    async def get(self, job_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": job_id})

    async def get_owned(self, user_id: ObjectId, job_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": job_id, "user_id": user_id})

    async def latest_named(self, user_id: ObjectId, kind: str, model_name: str) -> dict[str, Any] | None:
        """The user's newest job of `kind` for `model_name` (a download, say), whatever its state."""
        return await self.collection.find_one(
            {"user_id": user_id, "kind": kind, "model_key": model_name.lower()}, sort=[("_id", -1)]
        )

    async def find_by_external_id(self, backend: str, external_id: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"backend": backend, "external_id": external_id})

    async def list_owned(
        self,
        user_id: ObjectId,
        *,
        before: ObjectId | None,
        limit: int,
        status: str | None = None,
        kind: str | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first, keyset-paginated on _id: stable while jobs are being created."""
        query: dict[str, Any] = {"user_id": user_id}
        if before is not None:
            query["_id"] = {"$lt": before}
        if status:
            query["status"] = status
        if kind:
            query["kind"] = kind
        return await self.collection.find(query).sort("_id", DESCENDING).limit(limit).to_list()

    async def page_owned(
        self, user_id: ObjectId, *, match: dict[str, Any], limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        """Newest first, limit/offset, with the total: seed 003's bare lists (filtered by `match`)."""
        query = {**match, "user_id": user_id}
        cursor = self.collection.find(query).sort("_id", DESCENDING).skip(offset).limit(limit)
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def update_if(
        self,
        job_id: ObjectId,
        *,
        from_status: tuple[str, ...],
        changes: dict[str, Any],
        where: dict[str, Any] | None = None,
    ) -> dict[str, Any] | None:
        """Apply `changes` only if the job is in one of `from_status` (and matches `where`); None
        otherwise (it moved on)."""
        query = {"_id": job_id, "status": {"$in": list(from_status)}, **(where or {})}
        return await self.collection.find_one_and_update(
            query, {"$set": {**changes, "updated_at": utcnow()}}, return_document=ReturnDocument.AFTER
        )

    async def count_running(self, user_id: ObjectId, kind: str) -> int:
        return await self.collection.count_documents(
            {"user_id": user_id, "kind": kind, "status": {"$in": list(RUNNING)}}
        )

    async def stale(
        self, statuses: tuple[str, ...], older_than: datetime, limit: int = 100
    ) -> list[dict[str, Any]]:
        query = {"status": {"$in": list(statuses)}, "updated_at": {"$lt": older_than}}
        return await self.collection.find(query).limit(limit).to_list()

    async def in_states(
        self, statuses: tuple[str, ...], *, backends: tuple[str | None, ...] | None = None
    ) -> list[dict[str, Any]]:
        """Every job in one of `statuses` (run by one of `backends`, if given; None: not handed to any)."""
        query: dict[str, Any] = {"status": {"$in": list(statuses)}}
        if backends is not None:
            query["backend"] = {"$in": list(backends)}
        return await self.collection.find(query).sort("_id", ASCENDING).to_list()

    async def forget_model(self, job_id: ObjectId) -> None:
        """The job's trained model was deleted; its results stay."""
        await self.collection.update_one({"_id": job_id}, {"$set": {"model_id": None}})

    async def delete(self, job_id: ObjectId) -> None:
        await self.collection.delete_one({"_id": job_id})

    async def dataset_in_use(self, dataset_id: ObjectId) -> bool:
        query = {"dataset_id": dataset_id, "status": {"$in": list(ACTIVE)}}
        return await self.collection.find_one(query) is not None


class JobEventRepository(Repository):
    """Every applied event, per job, for GET /api/jobs/{id}/events (kept 90 days)."""

    collection_name = "job_events"
    indexes = (
        IndexModel([("job_id", ASCENDING), ("_id", ASCENDING)], name="job_order"),
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=90 * 24 * 3600, name="ttl_90d"),
    )

    async def append(self, job: dict[str, Any], event_type: str, data: dict[str, Any]) -> None:
        await self.collection.insert_one(
            {
                "job_id": job["_id"],
                "user_id": job["user_id"],
                "type": event_type,
                "data": data,
                "created_at": utcnow(),
            }
        )

    async def list_for(self, job_id: ObjectId, *, after: ObjectId | None, limit: int) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"job_id": job_id}
        if after is not None:
            query["_id"] = {"$gt": after}
        return await self.collection.find(query).sort("_id", ASCENDING).limit(limit).to_list()
