"""Fixed-window request counters shared by every Lambda container (TTL-cleaned)."""

from __future__ import annotations

from datetime import datetime

from pymongo import ASCENDING, IndexModel, ReturnDocument

from stratus.db.repository import Repository


class RateLimitRepository(Repository):
    collection_name = "rate_limits"
    indexes = (IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),)

    async def hit(self, key: str, *, expires_at: datetime, by: int = 1) -> int:
        """Add `by` to the window's counter and return the new count (atomic across processes)."""
        doc = await self.collection.find_one_and_update(
            {"_id": key},
            {"$inc": {"count": by}, "$setOnInsert": {"expires_at": expires_at}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            # Two first hits on one window can race on the upsert; the update applied, so read it back.
            doc = await self.collection.find_one({"_id": key})
        return int(doc["count"]) if doc else by

    async def peek(self, key: str) -> int:
        doc = await self.collection.find_one({"_id": key})
        return int(doc["count"]) if doc else 0
