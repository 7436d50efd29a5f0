"""Webhook endpoints a user registers, and the log of every delivery made to them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow

DELIVERY_RETENTION_S = 30 * 24 * 3600


class WebhookRepository(Repository):
    collection_name = "webhooks"
    indexes = (
        IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_created"),
        # dispatch() looks endpoints up by owner and subscribed event (multikey on `events`).
        IndexModel([("user_id", ASCENDING), ("events", ASCENDING)], name="user_events"),
    )

    async def create(
        self, *, user_id: ObjectId, url: str, events: list[str], secret: str, description: str | None
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "user_id": user_id,
            "url": url,
            "events": events,
            # Kept in full, unlike API keys (stored as digests): every delivery is signed with it, so it
            # must be readable. It never leaves the service after the create response.
            "secret": secret,
            "description": description,
            "active": True,
            "created_at": utcnow(),
        }
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, webhook_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": webhook_id, "user_id": user_id})

    async def get(self, webhook_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": webhook_id})

    async def list_for(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id}
        cursor = (
            self.collection.find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def subscribed(self, user_id: ObjectId, event: str) -> list[dict[str, Any]]:
        """The user's active endpoints that asked for `event`, or for everything ("*")."""
        query = {"user_id": user_id, "active": True, "events": {"$in": [event, "*"]}}
        return await self.collection.find(query).to_list()

    async def delete_owned(self, user_id: ObjectId, webhook_id: ObjectId) -> bool:
        result = await self.collection.delete_one({"_id": webhook_id, "user_id": user_id})
        return result.deleted_count == 1


class WebhookDeliveryRepository(Repository):
    collection_name = "webhook_deliveries"
    indexes = (
        IndexModel([("webhook_id", ASCENDING), ("created_at", DESCENDING)], name="webhook_created"),
        # The log is for debugging recent deliveries; old entries go on their own.
        IndexModel([("created_at", ASCENDING)], expireAfterSeconds=DELIVERY_RETENTION_S, name="created_ttl"),
    )

    async def create(
        self, *, webhook_id: ObjectId, user_id: ObjectId, event: str, payload: dict[str, Any], now: datetime
    ) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "webhook_id": webhook_id,
            "user_id": user_id,
            "event": event,
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "last_status_code": None,
            "last_error": None,
            "next_attempt_at": now,
            "created_at": now,
            "delivered_at": None,
        }
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get(self, delivery_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": delivery_id})

    async def list_for(
        self, user_id: ObjectId, webhook_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"webhook_id": webhook_id, "user_id": user_id}
        cursor = (
            self.collection.find(query)
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def record_attempt(
        self, delivery_id: ObjectId, *, after_attempts: int, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        """Store one attempt's outcome, only if no other consumer recorded this attempt first.

        SQS delivers at least once, so two consumers may race on one message; the `attempts` guard
        makes exactly one of them schedule the retry. None when the other one won.
        """
        return await self.collection.find_one_and_update(
            {"_id": delivery_id, "status": "pending", "attempts": after_attempts - 1},
            {"$set": {**changes, "attempts": after_attempts}},
            return_document=ReturnDocument.AFTER,
        )

    async def fail(self, delivery_id: ObjectId, error: str) -> None:
        """Give up on a delivery that was never attempted (it could not be queued)."""
        await self.collection.update_one(
            {"_id": delivery_id, "status": "pending"},
            {"$set": {"status": "failed", "last_error": error, "next_attempt_at": None}},
        )

    async def delete_for_webhook(self, webhook_id: ObjectId) -> None:
        await self.collection.delete_many({"webhook_id": webhook_id})
