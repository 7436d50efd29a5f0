"""Per-user rate-limit counts written in batches: exact within a process, bounded across processes."""

from __future__ import annotations

import httpx

from stratus.composition import Container
from stratus.services.rate_limit import Limit, RateLimiter

WINDOW_START = 1_800_000_000.0  # a window boundary for a 3,600 s window


class Clock:
    def __init__(self) -> None:
        self.now = WINDOW_START + 10

    def __call__(self) -> float:
        return self.now


def _limiter(container: Container, clock: Clock, *, batch: int, sync_s: float = 60.0) -> RateLimiter:
    return RateLimiter(container.rate_limit_counters, clock=clock, batch=batch, sync_s=sync_s)


async def _stored(container: Container, key: str) -> int:
    return await container.rate_limit_counters.peek(f"{key}:{int(WINDOW_START)}")


async def test_one_process_decides_exactly_with_fewer_writes(container: Container) -> None:
    # GIVEN one process counting a user's 25-request window in batches of 5
    limiter, limit = _limiter(container, Clock(), batch=5), Limit(25, 3600)
    # WHEN the user sends 26 requests
    decisions = [await limiter.hit_batched("rl:user:u1", limit) for _ in range(10)]
    written_after_ten = await _stored(container, "rl:user:u1")
    decisions += [await limiter.hit_batched("rl:user:u1", limit) for _ in range(16)]
    # THEN every answer is the one exact counting gives, and the 26th is refused
    assert [d.remaining for d in decisions] == list(range(24, -2, -1))
    assert [d.allowed for d in decisions] == [True] * 25 + [False]
    # AND far from the limit some hits wait in the process; near it, each is written
    assert written_after_ten < 10
    assert await _stored(container, "rl:user:u1") == 26


async def test_unsynced_hits_are_written_after_sync_s(container: Container) -> None:
    clock = Clock()
    limiter, limit = _limiter(container, clock, batch=10, sync_s=1.0), Limit(1000, 3600)
    for _ in range(4):
        await limiter.hit_batched("rl:user:u2", limit)
    assert await _stored(container, "rl:user:u2") == 1  # the first hit wrote; three wait in the process
    clock.now += 1.5
    decision = await limiter.hit_batched("rl:user:u2", limit)
    assert await _stored(container, "rl:user:u2") == 5
    assert decision.remaining == 995


async def test_processes_sharing_a_user_overshoot_by_at_most_the_documented_bound(
    container: Container,
) -> None:
    # GIVEN two processes (two Lambda containers) serving one user, batches of 5, a 30-request limit
    clock = Clock()
    processes = [_limiter(container, clock, batch=5), _limiter(container, clock, batch=5)]
    limit = Limit(30, 3600)
    # WHEN they take the user's requests in turn until both refuse
    admitted = 0
    for turn in range(200):
        if (await processes[turn % 2].hit_batched("rl:user:u3", limit)).allowed:
            admitted += 1
    # THEN at most (P - 1) * (batch - 1) requests beyond the limit got through, and never fewer than it
    assert 30 <= admitted <= 30 + (2 - 1) * (5 - 1), admitted


async def test_the_anonymous_bucket_is_still_written_on_every_request(
    client: httpx.AsyncClient, container: Container
) -> None:
    # The per-IP bucket guards against abuse: each request adds to the stored count before it is answered.
    assert container.settings.rate_limit_user_batch > 1
    stored = []
    for _ in range(3):
        assert (await client.get("/api/users/me")).status_code == 401
        docs = container.rate_limit_counters.collection.find({"_id": {"$regex": "^rl:ip:"}})
        stored.append([doc["count"] async for doc in docs])
    assert stored == [[1], [2], [3]]
