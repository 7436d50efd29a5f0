"""Chats and their messages (two collections); a chat's owner is checked on every read and write."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class ChatRepository(Repository):
    collection_name = "chats"
    indexes = (IndexModel([("user_id", ASCENDING), ("last_updated", DESCENDING)], name="user_updated"),)

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        now = utcnow()
        doc = {"created_at": now, "last_updated": now, **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get_owned(self, user_id: ObjectId, chat_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": chat_id, "user_id": user_id})

    async def get(self, chat_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": chat_id})

    async def list_owned(
        self, user_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"user_id": user_id}
        # _id breaks ties so pages never repeat or skip items.
        cursor = (
            self.collection.find(query)
            .sort([("last_updated", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def update_owned(
        self, user_id: ObjectId, chat_id: ObjectId, changes: dict[str, Any]
    ) -> dict[str, Any] | None:
        return await self.collection.find_one_and_update(
            {"_id": chat_id, "user_id": user_id},
            {"$set": {**changes, "last_updated": utcnow()}},
            return_document=ReturnDocument.AFTER,
        )

    async def touch(self, chat_id: ObjectId) -> None:
        """A new message moves the chat to the top of the list."""
        await self.collection.update_one({"_id": chat_id}, {"$set": {"last_updated": utcnow()}})

    async def delete_owned(self, user_id: ObjectId, chat_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one_and_delete({"_id": chat_id, "user_id": user_id})


class ChatMessageRepository(Repository):
    collection_name = "chat_messages"
    indexes = (
        IndexModel([("chat_id", ASCENDING), ("timestamp", ASCENDING), ("_id", ASCENDING)], name="chat_time"),
        # At most one assistant reply per user message, however often its queue message is delivered.
        # Sparse: user messages carry no `reply_to` at all (never null).
        IndexModel([("reply_to", ASCENDING)], unique=True, sparse=True, name="one_reply"),
    )

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = {"timestamp": utcnow(), **doc}
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def get(self, message_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": message_id})

    async def list_for_chat(
        self, chat_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        query = {"chat_id": chat_id}
        cursor = (
            self.collection.find(query)
            .sort([("timestamp", ASCENDING), ("_id", ASCENDING)])
            .skip(offset)
            .limit(limit)
        )
        return await cursor.to_list(), await self.collection.count_documents(query)

    async def history(self, chat_id: ObjectId, *, before: ObjectId, limit: int) -> list[dict[str, Any]]:
        """The chat's last `limit` messages up to and including `before`, oldest first."""
        anchor = await self.get(before)
        # Read newest first and cut at the anchor here: messages posted after it are few (a reply is
        # produced right away), and a range filter on the timestamp is not needed.
        cursor = (
            self.collection.find({"chat_id": chat_id})
            .sort([("timestamp", DESCENDING), ("_id", DESCENDING)])
            .limit(limit + 20)
        )
        docs = [d for d in await cursor.to_list() if anchor is None or _at_or_before(d, anchor)]
        return list(reversed(docs[:limit]))

    async def reply_to(self, message_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"reply_to": message_id})

    async def last_plan(
        self, chat_id: ObjectId, *, before: ObjectId, dataset_id: str
    ) -> dict[str, Any] | None:
        """The plan of the chat's latest answer on `dataset_id` before this message (for follow-ups)."""
        anchor = await self.get(before)
        query = {
            "chat_id": chat_id,
            "role": "assistant",
            "query.dataset_id": dataset_id,
            "query.plan": {"$type": "object"},
        }
        cursor = self.collection.find(query).sort([("timestamp", DESCENDING), ("_id", DESCENDING)]).limit(20)
        for doc in await cursor.to_list():
            if anchor is None or _at_or_before(doc, anchor):
                plan = (doc.get("query") or {}).get("plan")
                return plan if isinstance(plan, dict) else None
        return None

    async def delete(self, message_id: ObjectId) -> None:
        await self.collection.delete_one({"_id": message_id})

    async def delete_for_chat(self, chat_id: ObjectId) -> int:
        return (await self.collection.delete_many({"chat_id": chat_id})).deleted_count


def _at_or_before(doc: dict[str, Any], anchor: dict[str, Any]) -> bool:
    return bool((doc["timestamp"], doc["_id"]) <= (anchor["timestamp"], anchor["_id"]))
