"""The revocation memo: how stale a per-request revocation check may be, and when it may not be at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from stratus.composition import Container
from stratus.db.repositories.sessions import RevocationRepository
from tests.integration.api.accounts import Account

KEYS = ["jti:access-1", "fam:session-1"]
MEMO_S = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _until() -> datetime:
    return datetime.now(UTC) + timedelta(hours=1)


async def test_a_revocation_from_another_process_is_seen_within_the_bound(container: Container) -> None:
    # GIVEN this process's repository with a memo, and another process's (another Lambda container)
    clock = Clock()
    here = RevocationRepository(container.database.db, memo_s=MEMO_S, clock=clock)
    elsewhere = RevocationRepository(container.database.db)
    assert await here.any_revoked(KEYS, memo=True) is False
    # WHEN the other process revokes the session
    await elsewhere.revoke(["fam:session-1"], expires_at=_until(), reason="logout")
    # THEN a check that must be exact sees it at once, the memoized check at the latest MEMO_S later
    assert await here.any_revoked(KEYS) is True
    clock.now += MEMO_S - 0.1
    assert await here.any_revoked(KEYS, memo=True) is False
    clock.now += 0.2
    assert await here.any_revoked(KEYS, memo=True) is True


async def test_a_revocation_made_in_this_process_is_refused_at_once(container: Container) -> None:
    here = RevocationRepository(container.database.db, memo_s=MEMO_S, clock=Clock())
    assert await here.any_revoked(KEYS, memo=True) is False
    await here.revoke(["jti:access-1"], expires_at=_until(), reason="logout")
    assert await here.any_revoked(KEYS, memo=True) is True


async def test_a_check_in_flight_across_a_revocation_is_not_memoized(container: Container) -> None:
    read_done, resume = asyncio.Event(), asyncio.Event()

    class PausedAfterRead(RevocationRepository):
        async def _read(self, keys: list[str]) -> bool:
            revoked = await super()._read(keys)
            read_done.set()
            await resume.wait()
            return revoked

    here = PausedAfterRead(container.database.db, memo_s=MEMO_S, clock=Clock())
    # GIVEN a check that has read "not revoked" but not yet returned
    check = asyncio.create_task(here.any_revoked(KEYS, memo=True))
    await asyncio.wait_for(read_done.wait(), 10)
    # WHEN the session is revoked in between, and then the check completes
    await here.revoke(["fam:session-1"], expires_at=_until(), reason="logout")
    resume.set()
    assert await asyncio.wait_for(check, 10) is False  # what it read, before the revocation
    # THEN its stale answer was not kept for the next request
    assert await here.any_revoked(KEYS, memo=True) is True


async def test_a_used_token_is_refused_right_after_logout(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    # The container's memo is on by default; the token's check is memoized by the first request.
    assert container.settings.revocation_check_cache_s > 0
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 200
    assert (await client.post("/api/auth/logout", headers=alice.headers)).status_code == 200
    me = await client.get("/api/users/me", headers=alice.headers)
    assert me.status_code == 401
    assert me.json()["code"] == "TOKEN_REVOKED"
