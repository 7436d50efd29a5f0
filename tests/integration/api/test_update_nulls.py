"""An explicit null in a PATCH or PUT body: stored, it would break every read of the resource whose read
model requires the field, so the body refuses it (422 naming the field) unless the field may be empty.

The rule is checked over every PATCH and PUT the OpenAPI document lists, so a new one is covered too."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from tests.integration.api.accounts import Account

Schema = dict[str, Any]


def _resolve(document: Schema, schema: Schema) -> Schema:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    # An optional body (FastAPI: anyOf [model, null]) is judged by its model.
    objects = [s for s in schema.get("anyOf", []) if s != {"type": "null"}]
    return _resolve(document, objects[0]) if len(objects) == 1 else schema


def _nullable(schema: Schema) -> bool:
    kinds = schema.get("type")
    return (
        kinds == "null"
        or (isinstance(kinds, list) and "null" in kinds)
        or any(_nullable(s) for s in schema.get("anyOf", []) + schema.get("oneOf", []))
    )


def _updates(app: FastAPI) -> list[tuple[str, str, Schema, Schema]]:
    """(method, path, request body schema, 200 response schema) of every PATCH and PUT with a JSON body."""
    document = app.openapi()
    found = []
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if method not in ("patch", "put") or body is None:
                continue
            answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
            found.append((method, path, _resolve(document, body["schema"]), _resolve(document, answer)))
    return found


async def test_the_openapi_document_lists_the_updates(app: FastAPI) -> None:
    # The checks below are only as good as this enumeration.
    listed = {(method, path) for method, path, _, _ in _updates(app)}
    assert {("patch", "/api/models/{model_id}"), ("put", "/api/users/me")} <= listed
    assert ("patch", "/api/finetune/{job_id}/status") in listed


async def test_an_update_admits_null_only_where_the_resource_may_hold_it(app: FastAPI) -> None:
    for method, path, request, response in _updates(app):
        for field, schema in request.get("properties", {}).items():
            read = response.get("properties", {}).get(field)
            if read is not None and _nullable(schema):
                assert _nullable(read), (
                    f"{method.upper()} {path}: `{field}` admits null; its read model does not"
                )


async def test_every_update_refuses_null_for_its_non_nullable_fields(
    client: httpx.AsyncClient, app: FastAPI, alice: Account
) -> None:
    checked = 0
    for method, path, request, _ in _updates(app):
        # The body is validated before the handler looks the resource up: any well-formed id will do.
        url = re.sub(r"\{[^}]+\}", str(ObjectId()), path)
        for field, schema in request.get("properties", {}).items():
            if _nullable(schema):
                continue
            response = await client.request(method, url, headers=alice.headers, json={field: None})
            assert response.status_code == 422, (method, path, field, response.text)
            assert [d["field"] for d in response.json()["details"]] == [field], (method, path)
            checked += 1
    assert checked >= 5  # name, status, version; the profile's name and email


@pytest.mark.parametrize("field", ["name", "full_name", "email"])
async def test_profile_put_refuses_null_and_keeps_the_profile(
    client: httpx.AsyncClient, alice: Account, field: str
) -> None:
    before = (await client.get("/api/users/me", headers=alice.headers)).json()
    response = await client.put("/api/users/me", headers=alice.headers, json={field: None})
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    after = await client.get("/api/users/me", headers=alice.headers)
    assert after.status_code == 200, after.text
    assert (after.json()["name"], after.json()["email"]) == (before["name"], before["email"])


async def _finetune(client: httpx.AsyncClient, owner: Account) -> str:
    files = {"file": ("d.csv", b"a,b\n1,2\n")}
    dataset = await client.post("/api/datasets/upload", headers=owner.headers, files=files)
    body = {"dataset_id": dataset.json()["_id"], "base_model": "gpt-3.5-turbo", "progress": 40}
    response = await client.post("/api/finetune", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


@pytest.mark.parametrize("field", ["progress", "status"])
async def test_finetune_status_patch_refuses_null_and_keeps_the_record(
    client: httpx.AsyncClient, alice: Account, field: str
) -> None:
    # GIVEN a fine-tune record at 40%
    job_id = await _finetune(client, alice)
    # WHEN a status change also sends null for a field every record has
    response = await client.patch(
        f"/api/finetune/{job_id}/status?status_update=training", headers=alice.headers, json={field: None}
    )
    # THEN it is a 422 naming the field, and the record and the listing still read as before
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    one = await client.get(f"/api/finetune/{job_id}", headers=alice.headers)
    assert one.status_code == 200, one.text
    assert (one.json()["status"], one.json()["progress"]) == ("preparing", 40)
    listed = await client.get("/api/finetune", headers=alice.headers)
    assert listed.status_code == 200, listed.text


async def test_finetune_status_patch_may_clear_the_current_step(
    client: httpx.AsyncClient, alice: Account
) -> None:
    job_id = await _finetune(client, alice)
    url = f"/api/finetune/{job_id}/status?status_update=training"
    await client.patch(url, headers=alice.headers, json={"current_step": "epoch 1"})
    response = await client.patch(url, headers=alice.headers, json={"current_step": None})
    assert response.status_code == 200, response.text
    assert response.json()["current_step"] is None
