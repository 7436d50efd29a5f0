"""API keys: created once, stored hashed, usable as a login and as a bearer credential, scoped to a model."""

from __future__ import annotations

import httpx

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
    headers = {"X-API-Key": key}
    assert (await client.get("/api/users/me", headers=headers)).status_code == 200  # who am I: allowed
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
