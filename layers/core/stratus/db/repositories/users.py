"""Users: accounts, profile, plan counters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, IndexModel, ReturnDocument
from pymongo.errors import DuplicateKeyError

from stratus.db.repository import Repository
from stratus.errors import InvalidInput
from stratus.schemas.common import utcnow

EMAIL_TAKEN = "Email already registered"
USERNAME_TAKEN = "Username already taken"

# Counters kept on the user document (seed 003's fields).
COUNTERS = ("queries_used", "fine_tune_jobs", "datasets_count")


def _duplicate_message(e: DuplicateKeyError) -> str:
    return USERNAME_TAKEN if "username" in str(e.details or e) else EMAIL_TAKEN


class UserRepository(Repository):
    collection_name = "users"
    indexes = (
        IndexModel([("email", ASCENDING)], unique=True, name="email_unique"),
        IndexModel(
            [("username", ASCENDING)],
            unique=True,
            name="username_unique",
            partialFilterExpression={"username": {"$type": "string"}},
        ),
    )

    async def create(
        self, *, email: str, password_hash: str, name: str, username: str | None
    ) -> dict[str, Any]:
        now = utcnow()
        doc: dict[str, Any] = {
            "email": email,
            "name": name,
            "password_hash": password_hash,
            "current_plan": "free",
            "billing_cycle": None,
            "quota_period": now.strftime("%Y-%m"),
            "created_at": now,
            "updated_at": now,
            **dict.fromkeys(COUNTERS, 0),
        }
        if username is not None:
            doc["username"] = username
        try:
            result = await self.collection.insert_one(doc)
        except DuplicateKeyError as e:
            raise InvalidInput(_duplicate_message(e), code="ALREADY_REGISTERED") from e
        doc["_id"] = result.inserted_id
        return doc

    async def get(self, user_id: ObjectId) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": user_id})

    async def find_by_email(self, email: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"email": email})

    async def find_by_username(self, username: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"username": username})

    async def update_profile(self, user_id: ObjectId, changes: dict[str, Any]) -> dict[str, Any] | None:
        try:
            return await self.collection.find_one_and_update(
                {"_id": user_id},
                {"$set": {**changes, "updated_at": utcnow()}},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError as e:
            raise InvalidInput(_duplicate_message(e), code="ALREADY_REGISTERED") from e

    async def set_password_hash(self, user_id: ObjectId, password_hash: str) -> None:
        await self.collection.update_one({"_id": user_id}, {"$set": {"password_hash": password_hash}})

    async def increment(self, user_id: ObjectId, counter: str, by: int = 1) -> None:
        assert counter in COUNTERS
        # Never below zero, even if a decrement races a delete.
        query: dict[str, Any] = {"_id": user_id}
        if by < 0:
            query[counter] = {"$gte": -by}
        await self.collection.update_one(query, {"$inc": {counter: by}})

    async def consume_query(
        self, user_id: ObjectId, *, period: str, limit: int | None
    ) -> dict[str, Any] | None:
        """Count one query against the monthly quota; None when the quota is used up.

        The period roll-over and the conditional increment are each one atomic update, so concurrent
        requests can never push the count past the limit.
        """
        await self.collection.update_one(
            {"_id": user_id, "quota_period": {"$ne": period}},
            {"$set": {"quota_period": period, "queries_used": 0}},
        )
        query: dict[str, Any] = {"_id": user_id}
        if limit is not None:
            query["queries_used"] = {"$lt": limit}
        return await self.collection.find_one_and_update(
            query, {"$inc": {"queries_used": 1}}, return_document=ReturnDocument.AFTER
        )

    async def set_plan(self, user_id: ObjectId, plan: str, billing_cycle: str | None) -> None:
        await self.collection.update_one(
            {"_id": user_id},
            {"$set": {"current_plan": plan, "billing_cycle": billing_cycle, "updated_at": utcnow()}},
        )

    async def touch_login(self, user_id: ObjectId, when: datetime) -> None:
        await self.collection.update_one({"_id": user_id}, {"$set": {"last_login_at": when}})
