"""Accounts and sessions through every seed's request shapes, against the real database."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest

from stratus.settings import DEV_JWT_SECRET
from tests.integration.api.accounts import PASSWORD, Account, register

USER_FIELDS = {"current_plan", "queries_used", "fine_tune_jobs", "datasets_count", "billing_cycle"}


async def test_register_returns_seed_003_user_and_seed_004_tokens(client: httpx.AsyncClient) -> None:
    # WHEN seed 003's curl example runs
    response = await client.post(
        "/api/auth/register",
        json={"email": "User@Example.com", "password": "securepassword123", "name": "John Doe"},
    )
    # THEN the user is at the top level with seed 003's counters, and under `user` with tokens (seed 004)
    assert response.status_code == 201
    body = response.json()
    assert body.keys() >= USER_FIELDS
    assert body["email"] == "user@example.com"  # normalised
    assert body["current_plan"] == "free"
    assert body["queries_used"] == 0
    assert body["billing_cycle"] is None
    assert body["_id"] == body["id"] == body["user"]["id"]
    assert len(body["_id"]) == 24
    assert body["created_at"].endswith("Z")
    assert body["access_token"]
    assert body["refresh_token"]
    assert body["token_type"] == "bearer"
    assert "password" not in response.text
    assert "password_hash" not in response.text


async def test_register_seed_001_shape_at_unprefixed_path(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/auth/register",
        json={
            "username": "jdoe",
            "email": "jdoe@example.com",
            "password": "s3cret-pass",
            "full_name": "Jane Doe",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["username"] == "jdoe"
    assert body["full_name"] == "Jane Doe"
    assert body["name"] == "Jane Doe"


async def test_duplicate_email_is_400_with_seed_003_detail(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post(
        "/api/auth/register", json={"email": alice.email.upper(), "password": PASSWORD, "name": "Again"}
    )
    assert response.status_code == 400
    assert response.json()["detail"] == "Email already registered"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"email": "not-an-email", "password": PASSWORD, "name": "X"}, "email"),
        ({"email": "a@example.com", "password": "12345", "name": "X"}, "password"),
        ({"email": "a@example.com", "password": "password", "name": "X"}, "password"),
        ({"email": "a@example.com", "password": PASSWORD}, "name"),
    ],
)
async def test_register_rejects_bad_input_naming_the_field(
    client: httpx.AsyncClient, payload: dict[str, str], field: str
) -> None:
    response = await client.post("/api/auth/register", json=payload)
    assert response.status_code == 422
    assert field in {d["field"] for d in response.json()["details"]}


async def test_login_with_email_returns_tokens_and_user(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 1800
    assert body["user"]["email"] == alice.email
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["_id"] == alice.user_id


async def test_login_with_username_at_seed_001_path(client: httpx.AsyncClient) -> None:
    await register(client, username="trainer1")
    response = await client.post("/auth/login", json={"username": "trainer1", "password": PASSWORD})
    assert response.status_code == 200
    assert set(response.json()) >= {"access_token", "refresh_token", "token_type", "expires_in"}


async def test_wrong_password_and_unknown_email_answer_alike(
    client: httpx.AsyncClient, alice: Account
) -> None:
    wrong = await client.post("/api/auth/login", json={"email": alice.email, "password": "not-the-password"})
    unknown = await client.post("/api/auth/login", json={"email": "nobody@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json()["detail"] == unknown.json()["detail"] == "Incorrect email or password"


async def test_login_needs_a_complete_shape(client: httpx.AsyncClient) -> None:
    response = await client.post("/api/auth/login", json={"email": "a@example.com"})
    assert response.status_code == 422
    assert "password" in response.json()["message"]


async def test_repeated_failures_lock_the_account_with_429(client: httpx.AsyncClient, alice: Account) -> None:
    limit = 10  # settings.login_failures_per_account
    for _ in range(limit):
        response = await client.post("/api/auth/login", json={"email": alice.email, "password": "wrong-pass"})
        assert response.status_code == 401
    response = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["retry_after"] > 0


async def test_refresh_rotates_and_reuse_revokes_the_family(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # GIVEN a refresh token that has been used once
    first = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert first.status_code == 200
    rotated = first.json()
    assert rotated["refresh_token"] != alice.refresh_token
    # WHEN the old one is presented again (someone kept a copy)
    reuse = await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    # THEN it is refused and the whole session ends: the new refresh and access tokens die too
    assert reuse.status_code == 401
    assert reuse.json()["code"] == "TOKEN_REUSED"
    again = await client.post("/api/auth/refresh", json={"refresh_token": rotated["refresh_token"]})
    assert again.status_code == 401
    me = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {rotated['access_token']}"})
    assert me.status_code == 401


async def test_logout_revokes_access_token_and_session(client: httpx.AsyncClient, alice: Account) -> None:
    response = await client.post("/api/auth/logout", headers=alice.headers)
    assert response.status_code == 200
    assert response.json() == {"message": "Successfully logged out"}
    assert (await client.get("/api/auth/me", headers=alice.headers)).status_code == 401
    refresh = await client.post("/api/auth/refresh", json={"refresh_token": alice.refresh_token})
    assert refresh.status_code == 401
    # Other sessions of the same user are untouched.
    other = await client.post("/api/auth/login", json={"email": alice.email, "password": PASSWORD})
    token = other.json()["access_token"]
    assert (
        await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
    ).status_code == 200


def _forge(claims: dict[str, object], *, key: str = DEV_JWT_SECRET, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, key, algorithm=algorithm)


@pytest.mark.parametrize(
    "attack", ["alg_none", "wrong_key", "refresh_as_access", "expired", "garbage", "no_jti"]
)
async def test_bad_tokens_are_401_with_the_standard_shape(
    client: httpx.AsyncClient, alice: Account, attack: str
) -> None:
    now = int(time.time())
    claims: dict[str, object] = {
        "sub": alice.user_id, "type": "access", "jti": "x" * 32, "fam": "f" * 32,
        "iat": now, "exp": now + 600, "iss": "stratus",
    }  # fmt: skip
    token = {
        "alg_none": lambda: jwt.encode(claims, key=None, algorithm="none"),
        "wrong_key": lambda: _forge(claims, key="another-secret-of-enough-length-0123456789"),
        "refresh_as_access": lambda: alice.refresh_token,
        "expired": lambda: _forge({**claims, "iat": now - 7200, "exp": now - 3600}),
        "garbage": lambda: "not.a.jwt",
        "no_jti": lambda: _forge({k: v for k, v in claims.items() if k != "jti"}),
    }[attack]()
    response = await client.get("/api/auth/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    body = response.json()
    assert {"detail", "error", "message", "code", "status_code", "request_id"} <= body.keys()
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_missing_credentials_is_401(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/users/me")
    assert response.status_code == 401
    assert response.json()["detail"] == "Authentication required"


async def test_update_profile_keeps_email_unique(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    # Seed 004's example body
    ok = await client.put(
        "/api/users/me", headers=alice.headers, json={"name": "John Smith", "email": "John.Smith@example.com"}
    )
    assert ok.status_code == 200
    assert ok.json()["name"] == "John Smith"
    assert ok.json()["email"] == "john.smith@example.com"
    taken = await client.put("/api/users/me", headers=bob.headers, json={"email": "john.smith@example.com"})
    assert taken.status_code == 400
    assert taken.json()["detail"] == "Email already registered"
    empty = await client.put("/api/users/me", headers=bob.headers, json={})
    assert empty.status_code == 400
    unknown = await client.put("/api/users/me", headers=bob.headers, json={"current_plan": "pro"})
    assert unknown.status_code == 422  # plan is not self-service


async def test_unprefixed_paths_work_but_stay_out_of_the_schema(client: httpx.AsyncClient) -> None:
    paths = (await client.get("/openapi.json")).json()["paths"]
    assert "/api/auth/login" in paths
    assert "/auth/login" not in paths
    await client.post("/auth/login", json={"email": "x@example.com", "password": "whatever1"})
    metrics = (await client.get("/metrics")).text
    # Each mount has its own route label, so dashboards can tell seed clients apart.
    assert 'route="/auth/login",status="401"' in metrics
