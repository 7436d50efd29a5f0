"""API keys: created once, stored hashed, usable as a login and as a bearer credential, scoped to a model."""

from __future__ import annotations

import httpx
from bson import ObjectId

from stratus.composition import Container
from tests.integration.api.accounts import Account

MODEL = {"name": "My Fine-tuned Model", "base_model": "gpt-3.5-turbo", "version": "1.0.0", "status": "ready"}


async def _model(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post("/api/models", headers=account.headers, json={**MODEL, "accuracy": "0.95"})
    assert response.status_code == 201, response.text
    assert response.json()["accuracy"] == "0.95"  # seed 003 renders metrics as strings
    return str(response.json()["_id"])


async def test_create_list_delete(client: httpx.AsyncClient, alice: Account) -> None:
    model_id = await _model(client, alice)
    created = await client.post(
        "/api/apikeys", headers=alice.headers, json={"model_id": model_id, "name": "Production API Key"}
    )
    assert created.status_code == 201
    key = created.json()["key"]
    assert key.startswith("sk-")
    assert len(key) > 40
    listed = await client.get("/api/apikeys?limit=10&offset=0", headers=alice.headers)
    assert listed.status_code == 200
    assert listed.headers["X-Total-Count"] == "1"
    [item] = listed.json()
    assert item["model_id"] == model_id
    assert item["name"] == "Production API Key"
    assert key not in listed.text
    assert item["key"].startswith(item["key_prefix"])
    deleted = await client.delete(f"/api/apikeys/{item['_id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert (await client.delete(f"/api/apikeys/{item['_id']}", headers=alice.headers)).status_code == 404
    # A deleted key no longer authenticates.
    assert (await client.get("/api/users/me", headers={"X-API-Key": key})).status_code == 401


async def test_unknown_model_is_404_and_malformed_id_is_422(
    client: httpx.AsyncClient, alice: Account
) -> None:
    missing = await client.post(
        "/api/apikeys", headers=alice.headers, json={"model_id": "507f1f77bcf86cd799439040", "name": "k"}
    )
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Model not found"
    malformed = await client.post(
        "/api/apikeys", headers=alice.headers, json={"model_id": "nope", "name": "k"}
    )
    assert malformed.status_code == 422
    assert malformed.json()["details"][0]["field"] == "model_id"


async def test_unbound_key_logs_in_and_authenticates(client: httpx.AsyncClient, alice: Account) -> None:
    key = (await client.post("/api/apikeys", headers=alice.headers, json={"name": "cli"})).json()["key"]
    # Seed 000: an API key alone opens a session.
    login = await client.post("/auth/login", json={"api_key": key})
    assert login.status_code == 200
    session = {"Authorization": f"Bearer {login.json()['access_token']}"}
    assert (await client.get("/api/users/me", headers=session)).json()["_id"] == alice.user_id
    for headers in ({"Authorization": f"Bearer {key}"}, {"X-API-Key": key}):
        assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    bad = await client.post("/auth/login", json={"api_key": "sk-" + "0" * 48})
    assert bad.status_code == 401
    assert bad.json()["detail"] == "Invalid API key"


async def test_model_bound_key_cannot_manage_the_account(client: httpx.AsyncClient, alice: Account) -> None:
    model_id = await _model(client, alice)
    key = (
        await client.post("/api/apikeys", headers=alice.headers, json={"model_id": model_id, "name": "bound"})
    ).json()["key"]
    login = await client.post("/auth/login", json={"api_key": key})
    assert login.status_code == 200
    # The key itself, and a session opened with it, carry the binding: the account is not theirs to read.
    for headers in ({"X-API-Key": key}, {"Authorization": f"Bearer {login.json()['access_token']}"}):
        for path in ("/api/users/me", "/api/auth/me", "/auth/me"):
            profile = await client.get(path, headers=headers)
            assert profile.status_code == 403, path
            assert profile.json()["code"] == "API_KEY_SCOPE"
            assert alice.email not in profile.text
        refused = await client.post("/api/apikeys", headers=headers, json={"name": "escalate"})
        assert refused.status_code == 403
        assert refused.json()["code"] == "API_KEY_SCOPE"
        assert (await client.get("/api/models", headers=headers)).status_code == 403


async def test_model_bound_key_may_call_only_its_model(client: httpx.AsyncClient, alice: Account) -> None:
    own, other = await _model(client, alice), await _model(client, alice)
    created = await client.post(
        "/api/apikeys", headers=alice.headers, json={"model_id": own, "name": "bound"}
    )
    headers = {"X-API-Key": created.json()["key"]}
    refused = await client.post(f"/models/{other}/predict", headers=headers, json={"input": [1, 2]})
    assert refused.status_code == 403 and refused.json()["code"] == "API_KEY_SCOPE"
    # Its own model gets past the scope check (a registered record has no weights to predict with).
    allowed = await client.post(f"/models/{own}/predict", headers=headers, json={"input": [1, 2]})
    assert allowed.status_code == 409 and allowed.json()["code"] == "MODEL_NOT_PREDICTABLE"


async def _key_session(client: httpx.AsyncClient, account: Account) -> tuple[str, dict[str, str]]:
    """An unbound key of `account` and the session `POST /auth/login {"api_key"}` opens with it."""
    created = await client.post("/api/apikeys", headers=account.headers, json={"name": "cli"})
    assert created.status_code == 201
    login = await client.post("/auth/login", json={"api_key": created.json()["key"]})
    assert login.status_code == 200
    return str(created.json()["_id"]), login.json()


async def test_deleting_a_key_ends_the_sessions_opened_with_it(
    client: httpx.AsyncClient, alice: Account
) -> None:
    # GIVEN a session opened with a key, one refreshed once already, and Alice's own password session
    key_id, session = await _key_session(client, alice)
    refreshed = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refreshed.status_code == 200
    tokens = [session["access_token"], refreshed.json()["access_token"]]
    for token in tokens:
        assert (
            await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        ).status_code == 200
    # WHEN the key is deleted
    assert (await client.delete(f"/api/apikeys/{key_id}", headers=alice.headers)).status_code == 204
    # THEN its sessions' access tokens stop working and their refresh tokens stop refreshing
    for token in tokens:
        me = await client.get("/api/users/me", headers={"Authorization": f"Bearer {token}"})
        assert me.status_code == 401
        assert me.json()["code"] == "TOKEN_REVOKED"
    again = await client.post("/auth/refresh", json={"refresh_token": refreshed.json()["refresh_token"]})
    assert again.status_code == 401
    assert again.json()["code"] == "SESSION_REVOKED"
    # AND sessions not opened with the key are untouched
    assert (await client.get("/api/users/me", headers=alice.headers)).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": alice.refresh_token})
    ).status_code == 200


async def test_a_key_session_does_not_outlive_its_key_however_the_key_went(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    # A key removed without the service (no revocation recorded) still cannot have its sessions refreshed.
    key_id, session = await _key_session(client, alice)
    await container.api_key_repo.collection.delete_one({"_id": ObjectId(key_id)})
    refresh = await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    assert refresh.status_code == 401
    assert refresh.json()["code"] == "SESSION_REVOKED"


async def test_another_user_cannot_end_a_keys_sessions(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    key_id, session = await _key_session(client, alice)
    assert (await client.delete(f"/api/apikeys/{key_id}", headers=bob.headers)).status_code == 404
    headers = {"Authorization": f"Bearer {session['access_token']}"}
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200
    assert (
        await client.post("/auth/refresh", json={"refresh_token": session["refresh_token"]})
    ).status_code == 200
