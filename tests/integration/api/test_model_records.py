"""Seed 003's model records at /api/models: what a PATCH may not store, and whose dataset a record may name."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from bson import ObjectId

from tests.integration.api.accounts import Account

MODEL = {"name": "Sentiment", "base_model": "bert-base-uncased", "version": "1.0.0", "status": "ready"}


async def _model(client: httpx.AsyncClient, owner: Account, **extra: Any) -> dict[str, Any]:
    response = await client.post("/api/models", headers=owner.headers, json={**MODEL, **extra})
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def _dataset(client: httpx.AsyncClient, owner: Account) -> str:
    files = {"file": ("d.csv", b"a,b\n1,2\n3,4\n")}
    response = await client.post("/api/datasets/upload", headers=owner.headers, files=files)
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


def _fields(response: httpx.Response) -> list[str]:
    return [d["field"] for d in response.json()["details"]]


@pytest.mark.parametrize("field", ["name", "status", "version"])
async def test_patch_refuses_null_for_a_field_every_record_has(
    client: httpx.AsyncClient, alice: Account, field: str
) -> None:
    # GIVEN one of Alice's model records
    model = await _model(client, alice)
    # WHEN she sends null for a field the record cannot be without
    response = await client.patch(f"/api/models/{model['_id']}", headers=alice.headers, json={field: None})
    # THEN it is a 422 naming the field
    assert response.status_code == 422, response.text
    assert _fields(response) == [field]
    # AND nothing was stored: every read of her models still answers, with the old values
    one = await client.get(f"/api/models/{model['_id']}", headers=alice.headers)
    assert one.status_code == 200, one.text
    assert one.json()[field] == MODEL[field]
    listed = await client.get("/api/models", headers=alice.headers)
    assert listed.status_code == 200, listed.text
    assert [m[field] for m in listed.json()] == [MODEL[field]]
    registry = await client.get("/models", headers=alice.headers)
    assert registry.status_code == 200, registry.text
    assert [m["name"] for m in registry.json()["models"]] == [MODEL["name"]]


async def test_patch_may_clear_a_metric(client: httpx.AsyncClient, alice: Account) -> None:
    # GIVEN a record with an accuracy
    model = await _model(client, alice, accuracy="0.95")
    # WHEN the accuracy is cleared with null
    response = await client.patch(
        f"/api/models/{model['_id']}", headers=alice.headers, json={"accuracy": None}
    )
    # THEN the record has none, and reads still answer
    assert response.status_code == 200, response.text
    assert response.json()["accuracy"] is None
    listed = await client.get("/api/models", headers=alice.headers)
    assert listed.status_code == 200, listed.text
    assert listed.json()[0]["accuracy"] is None


async def test_create_accepts_the_users_own_dataset(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _dataset(client, alice)
    model = await _model(client, alice, dataset_id=dataset_id)
    assert model["dataset_id"] == dataset_id


async def test_create_refuses_another_users_dataset(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    # GIVEN a dataset of Bob's
    dataset_id = await _dataset(client, bob)
    # WHEN Alice registers a model naming it, and one naming a dataset that does not exist
    theirs = await client.post("/api/models", headers=alice.headers, json={**MODEL, "dataset_id": dataset_id})
    missing = await client.post(
        "/api/models", headers=alice.headers, json={**MODEL, "dataset_id": str(ObjectId())}
    )
    # THEN both are the same 404 that training and fine-tuning answer, and no record was made
    assert theirs.status_code == missing.status_code == 404, (theirs.text, missing.text)
    assert theirs.json()["detail"] == missing.json()["detail"] == "Dataset not found"
    assert (await client.get("/api/models", headers=alice.headers)).json() == []
