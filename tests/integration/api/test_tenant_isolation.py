"""Tenant isolation: every resource endpoint answers another user's resource exactly as a missing one.

Each capability adds its resources to RESOURCES: how user A creates one, and the requests user B
must not get through (read, change, delete).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
import pytest
from bson import ObjectId

from tests.integration.api.accounts import Account

Create = Callable[[httpx.AsyncClient, Account], Awaitable[str]]


@dataclass(frozen=True)
class Resource:
    name: str
    create: Create
    # (method, path template with {id}, json body) tried by the other tenant
    attempts: tuple[tuple[str, str, dict[str, object] | None], ...]


async def _model(client: httpx.AsyncClient, owner: Account) -> str:
    body = {"name": "m", "base_model": "bert-base-uncased"}
    return str((await client.post("/api/models", headers=owner.headers, json=body)).json()["_id"])


async def _api_key(client: httpx.AsyncClient, owner: Account) -> str:
    return str((await client.post("/api/apikeys", headers=owner.headers, json={"name": "k"})).json()["_id"])


async def _dataset(client: httpx.AsyncClient, owner: Account) -> str:
    files = {"file": ("d.csv", b"a,b\n1,2\n")}
    return str((await client.post("/api/datasets/upload", headers=owner.headers, files=files)).json()["_id"])


async def _file(client: httpx.AsyncClient, owner: Account) -> str:
    files = {"file": ("notes.txt", b"hello")}
    return str((await client.post("/api/files/upload", headers=owner.headers, files=files)).json()["_id"])


async def _webhook(client: httpx.AsyncClient, owner: Account) -> str:
    body = {"url": "https://hooks.example.com/stratus", "events": ["training.completed"]}
    return str((await client.post("/api/webhooks", headers=owner.headers, json=body)).json()["_id"])


async def _job(client: httpx.AsyncClient, owner: Account) -> str:
    dataset_id = await _dataset(client, owner)
    body = {"dataset_id": dataset_id, "target": "b", "hyperparameters": {"epochs": 1}}
    return str((await client.post("/training/start", headers=owner.headers, json=body)).json()["job_id"])


async def _finetune(client: httpx.AsyncClient, owner: Account) -> str:
    body = {"dataset_id": await _dataset(client, owner), "base_model": "gpt-3.5-turbo"}
    return str((await client.post("/api/finetune", headers=owner.headers, json=body)).json()["_id"])


RESOURCES = [
    Resource(
        "model record",
        _model,
        (
            ("GET", "/api/models/{id}", None),
            ("PATCH", "/api/models/{id}", {"name": "stolen"}),
            ("DELETE", "/api/models/{id}", None),
        ),
    ),
    Resource("api key", _api_key, (("DELETE", "/api/apikeys/{id}", None),)),
    Resource(
        "dataset",
        _dataset,
        (
            ("GET", "/api/datasets/{id}", None),
            ("GET", "/datasets/{id}", None),
            ("GET", "/api/datasets/{id}/rows", None),
            ("POST", "/api/datasets/{id}/complete", None),
            ("DELETE", "/api/datasets/{id}", None),
            ("DELETE", "/datasets/{id}", None),
        ),
    ),
    Resource("file", _file, (("GET", "/api/files/{id}", None), ("DELETE", "/api/files/{id}", None))),
    Resource(
        "webhook",
        _webhook,
        (
            ("GET", "/api/webhooks/{id}", None),
            ("GET", "/api/webhooks/{id}/deliveries", None),
            ("POST", "/api/webhooks/{id}/test", None),
            ("DELETE", "/api/webhooks/{id}", None),
            ("DELETE", "/webhooks/{id}", None),
        ),
    ),
    Resource(
        "job",
        _job,
        (
            ("GET", "/api/jobs/{id}", None),
            ("GET", "/api/jobs/{id}/events", None),
            ("POST", "/api/jobs/{id}/cancel", None),
            ("GET", "/training/status/{id}", None),
            ("GET", "/training/results/{id}", None),
            ("POST", "/training/stop/{id}", None),
        ),
    ),
    Resource(
        "finetune",
        _finetune,
        (
            ("GET", "/api/finetune/{id}", None),
            ("PATCH", "/api/finetune/{id}/status?status_update=completed", None),
            ("PATCH", "/api/finetune/{id}/status", {"status": "failed", "progress": 100}),
            ("GET", "/api/jobs/{id}", None),
        ),
    ),
]

LISTINGS = {
    "model record": "/api/models",
    "api key": "/api/apikeys",
    "dataset": "/api/datasets",
    "file": "/api/files",
    "webhook": "/api/webhooks",
    "job": "/api/jobs",
    "finetune": "/api/finetune",
}


def _ids(body: object) -> list[str]:
    items = next(body[k] for k in ("files", "jobs") if k in body) if isinstance(body, dict) else body
    assert isinstance(items, list)
    return [item["_id"] for item in items]


@pytest.mark.parametrize("resource", RESOURCES, ids=lambda r: r.name)
async def test_other_tenants_see_404_like_a_missing_resource(
    client: httpx.AsyncClient, alice: Account, bob: Account, resource: Resource
) -> None:
    # GIVEN a resource of Alice's
    resource_id = await resource.create(client, alice)
    for method, template, body in resource.attempts:
        # WHEN Bob tries it, and when anyone tries an id that does not exist
        theirs = await client.request(method, template.format(id=resource_id), headers=bob.headers, json=body)
        missing = await client.request(method, template.format(id=ObjectId()), headers=bob.headers, json=body)
        # THEN both answers are the same 404
        assert theirs.status_code == missing.status_code == 404, (method, template)
        assert theirs.json()["detail"] == missing.json()["detail"]
    # AND Alice's resource is untouched
    listing = LISTINGS[resource.name]
    assert resource_id in _ids((await client.get(listing, headers=alice.headers)).json())
    assert _ids((await client.get(listing, headers=bob.headers)).json()) == []
