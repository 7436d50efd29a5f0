"""Refresh-token families and revocations.

Each login starts a family; each refresh spends one token and issues the next in the same family.
Presenting a spent token again means it leaked: the whole family is revoked (reuse detection).
Revocations (access-token ids and whole families) live in a TTL-indexed collection that cleans itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from stratus.db.repository import Repository
from stratus.schemas.common import utcnow


class RefreshTokenRepository(Repository):
    collection_name = "refresh_tokens"
    indexes = (
        IndexModel([("family", ASCENDING)], name="family"),
        IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),
    )

    async def record(self, *, jti: str, user_id: str, family: str, expires_at: datetime) -> None:
        await self.collection.insert_one(
            {"_id": jti, "user_id": user_id, "family": family, "expires_at": expires_at, "spent_at": None}
        )

    async def spend(self, jti: str) -> dict[str, Any] | None:
        """Atomically mark the token spent; None if it was unknown or already spent."""
        return await self.collection.find_one_and_update(
            {"_id": jti, "spent_at": None}, {"$set": {"spent_at": utcnow()}}
        )

    async def find(self, jti: str) -> dict[str, Any] | None:
        return await self.collection.find_one({"_id": jti})

    async def delete_family(self, family: str) -> int:
        result = await self.collection.delete_many({"family": family})
        return result.deleted_count


class RevocationRepository(Repository):
    """Revocation records, and an optional in-process memo of recent answers for the per-request check.

    With `memo_s` > 0, `any_revoked(..., memo=True)` answers from what this process read at most `memo_s`
    seconds ago, which saves a database round trip on nearly every authenticated request. The bound that
    buys: a revocation written by this process (logout, refresh-token reuse, API key deletion) clears the
    memo, so it is refused at once here; one written by another process (another Lambda container) is
    refused here within `memo_s` seconds. A revoked answer never goes stale: nothing un-revokes a token.
    """

    collection_name = "revocations"
    indexes = (IndexModel([("expires_at", ASCENDING)], expireAfterSeconds=0, name="expires_ttl"),)
    MEMO_ENTRIES = 10_000

    def __init__(
        self,
        db: AsyncDatabase[dict[str, Any]],
        *,
        memo_s: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(db)
        self._memo_s = memo_s
        self._clock = clock
        self._memo: dict[tuple[str, ...], tuple[float, bool]] = {}
        # Bumped by every revoke: a lookup that was in flight across one must not memo what it read.
        self._generation = 0

    async def revoke(self, keys: list[str], *, expires_at: datetime, reason: str) -> None:
        try:
            for key in keys:
                await self.collection.update_one(
                    {"_id": key},
                    {"$set": {"expires_at": expires_at, "reason": reason}},
                    upsert=True,
                )
        finally:
            self._generation += 1
            self._memo.clear()

    async def any_revoked(self, keys: list[str], *, memo: bool = False) -> bool:
        """Whether any of `keys` is revoked; `memo=True` accepts an answer up to `memo_s` seconds old."""
        if not (memo and self._memo_s > 0):
            return await self._read(keys)
        entry = tuple(keys)
        now = self._clock()
        cached = self._memo.get(entry)
        if cached is not None and cached[0] > now:
            return cached[1]
        generation = self._generation
        revoked = await self._read(keys)
        if generation == self._generation:
            self._remember(entry, now + self._memo_s, revoked)
        return revoked

    async def _read(self, keys: list[str]) -> bool:
        return await self.collection.find_one({"_id": {"$in": keys}}, projection={"_id": 1}) is not None

    def _remember(self, entry: tuple[str, ...], until: float, revoked: bool) -> None:
        if len(self._memo) >= self.MEMO_ENTRIES:
            now = self._clock()
            self._memo = {k: v for k, v in self._memo.items() if v[0] > now}
            if len(self._memo) >= self.MEMO_ENTRIES:
                self._memo.clear()
        self._memo[entry] = (until, revoked)
