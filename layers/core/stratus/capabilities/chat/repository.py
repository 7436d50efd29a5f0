"""Seed 004's chat history: one document per exchange (the user's message and the model's reply)."""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING, IndexModel

from stratus.db.repository import Repository


class ChatHistoryRepository(Repository):
    collection_name = "chat_history"
    indexes = (IndexModel([("user_id", ASCENDING), ("created_at", DESCENDING)], name="user_newest"),)

    async def insert(self, doc: dict[str, Any]) -> dict[str, Any]:
        doc = dict(doc)
        doc["_id"] = (await self.collection.insert_one(doc)).inserted_id
        return doc

    async def page(self, user_id: ObjectId, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """The user's exchanges, newest first, and how many there are in all."""
        cursor = (
            self.collection.find({"user_id": user_id})
            .sort([("created_at", DESCENDING), ("_id", DESCENDING)])
            .skip(offset)
            .limit(limit)
        )
        items = [doc async for doc in cursor]
        return items, await self.collection.count_documents({"user_id": user_id})
