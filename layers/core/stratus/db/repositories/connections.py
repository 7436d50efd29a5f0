"""Open WebSocket connections and the jobs each one follows.

Stored in the database, not in memory, because on AWS every WebSocket event and every job event runs in
whichever Lambda container is free: API Gateway holds the sockets, this collection holds who is who.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow

# API Gateway closes a WebSocket after two hours at most, so no record needs to outlive that; the TTL
# index removes connections whose $disconnect never ran (a crashed container, a dropped event).
MAX_CONNECTION_S = 2 * 3600
MAX_SUBSCRIPTIONS = 100


class ConnectionRepository(Repository):
    collection_name = "ws_connections"
    indexes = (
        IndexModel([("subscriptions", ASCENDING)], name="subscriptions"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    )

    async def add(self, connection_id: str, user_id: ObjectId) -> None:
        now = utcnow()
        doc = {
            "user_id": user_id,
            "subscriptions": [],
            "connected_at": now,
            "expires_at": now + timedelta(seconds=MAX_CONNECTION_S),
        }
        await self.collection.replace_one({"_id": connection_id}, doc, upsert=True)

    async def remove(self, connection_id: str) -> None:
        await self.collection.delete_one({"_id": connection_id})

    async def remove_many(self, connection_ids: list[str]) -> None:
        if connection_ids:
            await self.collection.delete_many({"_id": {"$in": connection_ids}})

    async def user_of(self, connection_id: str) -> ObjectId | None:
        doc = await self.collection.find_one({"_id": connection_id}, {"user_id": 1})
        return doc["user_id"] if doc else None

    async def subscribe(self, connection_id: str, user_id: ObjectId, job_id: str) -> bool:
        """Follow `job_id`; False when the connection is unknown, someone else's, or follows too many."""
        full = f"subscriptions.{MAX_SUBSCRIPTIONS - 1}"
        result = await self.collection.update_one(
            {"_id": connection_id, "user_id": user_id, full: {"$exists": False}},
            {"$addToSet": {"subscriptions": job_id}},
        )
        return result.matched_count == 1

    async def unsubscribe(self, connection_id: str, job_id: str) -> None:
        await self.collection.update_one({"_id": connection_id}, {"$pull": {"subscriptions": job_id}})

    async def subscribers(self, job_id: str) -> list[str]:
        cursor = self.collection.find({"subscriptions": job_id}, {"_id": 1})
        docs: list[dict[str, Any]] = await cursor.to_list()
        return [str(d["_id"]) for d in docs]
