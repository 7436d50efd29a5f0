"""Rate limits and plan quotas on MongoDB counters."""

from __future__ import annotations

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.errors import QuotaExceeded
from tests.integration.api.accounts import Account


async def test_every_limited_response_carries_the_headers(client: httpx.AsyncClient, alice: Account) -> None:
    first = await client.get("/api/users/me", headers=alice.headers)
    second = await client.get("/api/users/me", headers=alice.headers)
    assert first.headers["X-RateLimit-Limit"] == "1000"
    assert int(second.headers["X-RateLimit-Remaining"]) == int(first.headers["X-RateLimit-Remaining"]) - 1
    assert int(first.headers["X-RateLimit-Reset"]) > 0
    # Errors carry them too.
    missing = await client.delete(f"/api/apikeys/{ObjectId()}", headers=alice.headers)
    assert missing.status_code == 404
    assert "X-RateLimit-Remaining" in missing.headers


async def test_anonymous_callers_get_429_with_retry_after(
    client: httpx.AsyncClient, container: Container
) -> None:
    container.settings.rate_limit_anonymous = 3
    statuses = [(await client.get("/api/auth/me")).status_code for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    limited = await client.get("/api/auth/me")
    assert limited.status_code == 429
    assert int(limited.headers["Retry-After"]) >= 1
    assert limited.json()["retry_after"] >= 1
    assert limited.headers["X-RateLimit-Remaining"] == "0"


async def test_users_are_limited_separately(
    client: httpx.AsyncClient, container: Container, alice: Account, bob: Account
) -> None:
    container.settings.rate_limit_user = 2
    for _ in range(2):
        assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 200
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 429
    assert (await client.get("/api/users/me", headers=bob.headers)).status_code == 200


async def test_quota_counts_queries_and_refuses_with_402(container: Container, alice: Account) -> None:
    container.quota._quotas["free"] = 2
    user_id = ObjectId(alice.user_id)
    assert await container.quota.consume_query(user_id) == 1
    assert await container.quota.consume_query(user_id) == 2
    with pytest.raises(QuotaExceeded, match="Monthly query quota of 2"):
        await container.quota.consume_query(user_id)
    assert (await container.users.get(user_id) or {})["queries_used"] == 2
