"""Fixed-window rate limiting on MongoDB counters, so limits hold across Lambda containers.

At scale, API Gateway usage plans (per API key) can take over the per-user limit; this stays as the
per-IP and per-account guard.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from stratus.db.repositories.rate_limits import RateLimitRepository
from stratus.errors import RateLimited


@dataclass(frozen=True)
class Limit:
    requests: int
    window_s: int


@dataclass(frozen=True)
class Decision:
    limit: int
    remaining: int
    reset: int  # unix time the window ends
    retry_after: int

    @property
    def allowed(self) -> bool:
        return self.remaining >= 0

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(max(self.remaining, 0)),
            "X-RateLimit-Reset": str(self.reset),
        }


class RateLimiter:
    def __init__(self, counters: RateLimitRepository, *, clock: Callable[[], float] = time.time) -> None:
        self._counters = counters
        self._clock = clock

    def _window(self, key: str, limit: Limit) -> tuple[str, int, int]:
        now = self._clock()
        start = int(now // limit.window_s) * limit.window_s
        end = start + limit.window_s
        return f"{key}:{start}", end, max(1, math.ceil(end - now))

    async def hit(self, key: str, limit: Limit) -> Decision:
        """Count one request; the decision says whether it is within the limit."""
        window_key, end, retry_after = self._window(key, limit)
        count = await self._counters.hit(window_key, expires_at=datetime.fromtimestamp(end + 60, UTC))
        return Decision(limit.requests, limit.requests - count, end, retry_after)

    async def release(self, key: str, limit: Limit, decision: Decision) -> None:
        """Take back the hit that produced `decision` (an attempt that turned out not to count, such as a
        successful login). It lands in that hit's window even if a new window has begun since."""
        end = decision.reset
        window_key = f"{key}:{end - limit.window_s}"
        await self._counters.hit(window_key, expires_at=datetime.fromtimestamp(end + 60, UTC), by=-1)

    async def check(self, key: str, limit: Limit) -> Decision:
        """Read the window without counting (used before an attempt whose failures we count)."""
        window_key, end, retry_after = self._window(key, limit)
        count = await self._counters.peek(window_key)
        return Decision(limit.requests, limit.requests - count - 1, end, retry_after)

    @staticmethod
    def enforce(decision: Decision, message: str = "Too many requests") -> None:
        if not decision.allowed:
            raise RateLimited(message, retry_after=decision.retry_after)
