"""Plan quotas: each inference call counts against the user's monthly query allowance."""

from __future__ import annotations

from bson import ObjectId

from stratus.db.repositories.users import UserRepository
from stratus.errors import NotFound, QuotaExceeded
from stratus.schemas.common import utcnow


class QuotaService:
    def __init__(self, users: UserRepository, plan_quotas: dict[str, int]) -> None:
        self._users = users
        self._quotas = plan_quotas

    def quota_for(self, plan: str) -> int | None:
        return self._quotas.get(plan)

    async def consume_query(self, user_id: ObjectId) -> int:
        """Count one query; returns queries used this period. QuotaExceeded (402) when none are left."""
        user = await self._users.get(user_id)
        if user is None:
            raise NotFound("User not found")
        plan = str(user.get("current_plan", "free"))
        limit = self.quota_for(plan)
        updated = await self._users.consume_query(user_id, period=utcnow().strftime("%Y-%m"), limit=limit)
        if updated is None:
            raise QuotaExceeded(
                f"Monthly query quota of {limit} reached for the '{plan}' plan; it resets on the 1st (UTC)",
                details={"plan": plan, "quota": limit},
            )
        return int(updated["queries_used"])
