"""Fixed-window rate limiting on MongoDB counters, so limits hold across Lambda containers.

At scale, API Gateway usage plans (per API key) can take over the per-user limit; this stays as the
per-IP and per-account guard.

`hit` counts in the database on every call. `hit_batched`, for the per-user buckets every authenticated
request passes through, keeps up to `batch - 1` hits of a bucket in the process and writes them with the
next sync, which happens at the latest after `sync_s` seconds and on every hit once fewer than `batch`
requests remain. Within one process (`stratus serve`) the count it decides on is exact; with P processes
serving one user at once, each may not yet see up to `batch - 1` hits of every other, so at most
(P - 1) * (batch - 1) requests beyond the limit get through in a window. A process that dies loses its
unsynced hits (at most `batch - 1` per bucket).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

from stratus.db.repositories.rate_limits import RateLimitRepository
from stratus.errors import RateLimited


class Limit(NamedTuple):
    requests: int
    window_s: int


class Decision(NamedTuple):
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


@dataclass
class _LocalCount:
    """What this process knows of one bucket's window: the shared count at its last sync, plus its own hits
    not written yet."""

    seen: int
    synced_at: float
    ends: int
    pending: int = 0


class RateLimiter:
    MAX_LOCAL_BUCKETS = 10_000

    def __init__(
        self,
        counters: RateLimitRepository,
        *,
        clock: Callable[[], float] = time.time,
        batch: int = 1,
        sync_s: float = 0.0,
    ) -> None:
        self._counters = counters
        self._clock = clock
        self._batch = batch
        self._sync_s = sync_s
        self._local: dict[str, _LocalCount] = {}

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

    async def hit_batched(self, key: str, limit: Limit) -> Decision:
        """Count one request like `hit`, writing the count to the database in batches (see the module)."""
        window_key, end, retry_after = self._window(key, limit)
        now = self._clock()
        local = self._local.get(window_key)
        if (
            local is not None
            and now - local.synced_at < self._sync_s
            and local.pending + 1 < self._batch
            and limit.requests - (local.seen + local.pending + 1) >= self._batch
        ):
            local.pending += 1
            return Decision(limit.requests, limit.requests - local.seen - local.pending, end, retry_after)
        if local is None:
            local = self._track(window_key, _LocalCount(seen=0, synced_at=now, ends=end))
        by, local.pending = local.pending + 1, 0
        count = await self._counters.hit(window_key, expires_at=datetime.fromtimestamp(end + 60, UTC), by=by)
        # Syncs of one bucket can overlap; the higher count is the later one.
        local.seen, local.synced_at = max(local.seen, count), now
        return Decision(limit.requests, limit.requests - count - local.pending, end, retry_after)

    def _track(self, window_key: str, local: _LocalCount) -> _LocalCount:
        if len(self._local) >= self.MAX_LOCAL_BUCKETS:
            now = self._clock()
            self._local = {k: v for k, v in self._local.items() if v.ends > now}
            if len(self._local) >= self.MAX_LOCAL_BUCKETS:
                self._local.clear()
        self._local[window_key] = local
        return local

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
