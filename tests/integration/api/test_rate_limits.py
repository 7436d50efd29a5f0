"""Rate limits and plan quotas on MongoDB counters."""

from __future__ import annotations

import secrets
import time

import httpx
import jwt
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


def _made_up_key() -> str:
    return "sk-" + secrets.token_hex(24)  # shaped like a real key, belonging to no one


@pytest.mark.parametrize("shape", ["well-formed", "malformed"])
async def test_made_up_api_keys_count_against_the_ip(
    client: httpx.AsyncClient, container: Container, shape: str
) -> None:
    # GIVEN an anonymous limit of 3 (in a window long enough not to roll over mid-test)
    container.settings.rate_limit_anonymous = 3
    container.settings.rate_limit_anonymous_window_s = 10**9

    def credential() -> str:
        return _made_up_key() if shape == "well-formed" else "sk-" + secrets.token_hex(5)

    # WHEN each request brings a different invented key
    responses = [
        await client.get("/api/users/me", headers={"Authorization": f"Bearer {credential()}"})
        for _ in range(4)
    ]
    # THEN they share the IP's bucket: the fourth is refused
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert [r.headers["X-RateLimit-Limit"] for r in responses] == ["3"] * 4
    assert [r.headers["X-RateLimit-Remaining"] for r in responses] == ["2", "1", "0", "0"]


@pytest.mark.parametrize(
    "path", ["/api/auth/login", "/auth/login", "/api/auth/refresh", "/api/auth/register"]
)
async def test_credentials_do_not_lift_the_ip_limit_on_anonymous_endpoints(
    client: httpx.AsyncClient, container: Container, alice: Account, path: str
) -> None:
    container.settings.rate_limit_anonymous = 3
    container.settings.rate_limit_anonymous_window_s = 10**9
    body = {"email": alice.email, "password": "not-the-password", "refresh_token": "x", "name": "X"}
    credentials = [_made_up_key(), alice.access_token, _made_up_key(), alice.access_token]
    statuses = []
    for credential in credentials:
        response = await client.post(path, json=body, headers={"Authorization": f"Bearer {credential}"})
        assert response.headers["X-RateLimit-Limit"] == "3"
        statuses.append(response.status_code)
    assert statuses[-1] == 429
    assert 429 not in statuses[:-1]


async def test_real_keys_and_tokens_keep_their_own_buckets(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    container.settings.rate_limit_anonymous = 1
    container.settings.rate_limit_anonymous_window_s = 10**9
    key = (await client.post("/api/apikeys", headers=alice.headers, json={"name": "cli"})).json()["key"]
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {key}"}, alice.headers):
        for _ in range(2):
            response = await client.get("/api/users/me", headers=headers)
            assert response.status_code == 200
            assert response.headers["X-RateLimit-Limit"] == "1000"


async def test_an_expired_token_counts_against_the_ip(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    container.settings.rate_limit_anonymous = 3
    container.settings.rate_limit_anonymous_window_s = 10**9
    now = int(time.time())
    expired = jwt.encode(
        {"sub": alice.user_id, "type": "access", "jti": "x" * 32, "fam": "f" * 32, "iss": "stratus",
         "iat": now - 7200, "exp": now - 3600},
        container.settings.jwt_secret.get_secret_value(),
        algorithm="HS256",
    )  # fmt: skip
    responses = [
        await client.get("/api/users/me", headers={"Authorization": f"Bearer {expired}"}) for _ in range(4)
    ]
    assert [r.status_code for r in responses] == [401, 401, 401, 429]
    assert responses[0].headers["X-RateLimit-Limit"] == "3"
