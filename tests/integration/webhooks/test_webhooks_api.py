"""The webhook API: endpoints created with a one-time secret, listed, tested for real, deleted, isolated."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from bson import ObjectId

from stratus.capabilities.webhooks.service import WebhookService
from stratus.local.runtime import LocalPorts
from tests.integration.api.accounts import Account
from tests.integration.webhooks.receiver import Receiver

EVENTS = ["training.completed", "training.failed"]


async def _create(client: httpx.AsyncClient, owner: Account, url: str, **extra: object) -> dict[str, object]:
    body = {"url": url, "events": EVENTS, "description": "CI notifications", **extra}
    response = await client.post("/api/webhooks", headers=owner.headers, json=body)
    assert response.status_code == 201, response.text
    created: dict[str, object] = response.json()
    return created


async def test_the_secret_is_shown_once(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver
) -> None:
    # WHEN Alice registers an endpoint
    created = await _create(client, alice, receiver.url)
    # THEN the response carries a Standard Webhooks secret: whsec_ + base64 of 24 random bytes
    secret = str(created["secret"])
    assert secret.startswith("whsec_") and len(base64.b64decode(secret.removeprefix("whsec_"))) == 24
    assert created["id"] == created["_id"] and created["events"] == EVENTS and created["active"] is True
    assert created["user_id"] == alice.user_id and str(created["created_at"]).endswith("Z")
    # AND no later response does
    listing = await client.get("/api/webhooks", headers=alice.headers)
    single = await client.get(f"/api/webhooks/{created['id']}", headers=alice.headers)
    legacy = await client.get(f"/webhooks/{created['id']}", headers=alice.headers)
    assert listing.status_code == single.status_code == legacy.status_code == 200
    assert listing.headers["X-Total-Count"] == "1"
    for body in (listing.json()[0], single.json(), legacy.json()):
        assert "secret" not in body and body["url"] == receiver.url
    assert secret not in listing.text + single.text + legacy.text


async def test_listing_pages_newest_first(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver
) -> None:
    ids = [(await _create(client, alice, receiver.url, description=f"n{i}"))["id"] for i in range(3)]
    page = await client.get("/api/webhooks", headers=alice.headers, params={"limit": 2, "offset": 1})
    assert page.status_code == 200 and page.headers["X-Total-Count"] == "3"
    assert [w["id"] for w in page.json()] == [ids[1], ids[0]]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://example.com/hook", "events": ["*"]}, "url"),
        ({"url": "not a url", "events": ["*"]}, "url"),
        ({"url": "https://example.com/hook", "events": []}, "events"),
        ({"url": "https://example.com/hook", "events": ["training.exploded"]}, "events"),
        ({"url": "https://example.com/hook", "events": ["*"], "secret": "mine"}, "secret"),
    ],
)
async def test_invalid_endpoints_are_refused(
    client: httpx.AsyncClient, alice: Account, body: dict[str, object], field: str
) -> None:
    response = await client.post("/api/webhooks", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert field in json.dumps(response.json()["details"])


async def test_test_delivery_is_signed_and_logged(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver, ports: LocalPorts
) -> None:
    # GIVEN an endpoint
    created = await _create(client, alice, receiver.url)
    # WHEN Alice asks for a test delivery and the queue consumer runs it
    response = await client.post(f"/api/webhooks/{created['id']}/test", headers=alice.headers)
    assert response.status_code == 202, response.text
    delivery = response.json()
    assert delivery["status"] == "pending" and delivery["event"] == "webhook.test"
    await ports.queue.wait_idle(10)
    # THEN the receiver got one POST that verifies with the secret from creation
    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.method == "POST" and request.path == "/hooks/stratus"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"] == "Stratus-Webhooks/1"
    assert request.headers["webhook-id"] == delivery["id"]
    assert WebhookService.verify(str(created["secret"]), request.headers, request.body)
    assert not WebhookService.verify(str(created["secret"]), request.headers, request.body + b" ")
    payload = json.loads(request.body)
    assert payload["event"] == "webhook.test" and payload["data"]["webhook_id"] == created["id"]
    assert payload["timestamp"].endswith("Z")
    # AND the delivery log says so
    log = await client.get(f"/api/webhooks/{created['id']}/deliveries", headers=alice.headers)
    assert log.status_code == 200 and log.headers["X-Total-Count"] == "1"
    [entry] = log.json()
    assert entry["id"] == delivery["id"] and entry["status"] == "delivered"
    assert entry["attempts"] == 1 and entry["last_status_code"] == 200 and entry["delivered_at"]


async def test_deleting_an_endpoint_removes_it_and_its_log(
    client: httpx.AsyncClient, alice: Account, receiver: Receiver, ports: LocalPorts
) -> None:
    created = await _create(client, alice, receiver.url)
    await client.post(f"/api/webhooks/{created['id']}/test", headers=alice.headers)
    await ports.queue.wait_idle(10)
    assert (await client.delete(f"/api/webhooks/{created['id']}", headers=alice.headers)).status_code == 204
    for path in (f"/api/webhooks/{created['id']}", f"/api/webhooks/{created['id']}/deliveries"):
        assert (await client.get(path, headers=alice.headers)).status_code == 404
    assert (await client.delete(f"/webhooks/{created['id']}", headers=alice.headers)).status_code == 404


async def test_other_tenants_see_404_like_a_missing_endpoint(
    client: httpx.AsyncClient, alice: Account, bob: Account, receiver: Receiver, ports: LocalPorts
) -> None:
    # GIVEN Alice's endpoint
    webhook_id = (await _create(client, alice, receiver.url))["id"]
    attempts = [
        ("GET", "/api/webhooks/{id}"),
        ("GET", "/webhooks/{id}"),
        ("GET", "/api/webhooks/{id}/deliveries"),
        ("POST", "/api/webhooks/{id}/test"),
        ("DELETE", "/api/webhooks/{id}"),
        ("DELETE", "/webhooks/{id}"),
    ]
    for method, template in attempts:
        # WHEN Bob tries it, and when he tries an id that does not exist
        theirs = await client.request(method, template.format(id=webhook_id), headers=bob.headers)
        missing = await client.request(method, template.format(id=ObjectId()), headers=bob.headers)
        # THEN both answers are the same 404
        assert theirs.status_code == missing.status_code == 404, (method, template)
        assert theirs.json()["detail"] == missing.json()["detail"] == "Webhook not found"
    # AND Alice's endpoint is untouched, received nothing, and Bob lists none
    await ports.queue.wait_idle(10)
    assert receiver.requests == []
    assert (await client.get(f"/api/webhooks/{webhook_id}", headers=alice.headers)).status_code == 200
    bobs = await client.get("/api/webhooks", headers=bob.headers)
    assert bobs.json() == [] and bobs.headers["X-Total-Count"] == "0"


async def test_webhooks_need_authentication(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/webhooks")).status_code == 401
    body = {"url": "https://example.com/hook", "events": ["*"]}
    assert (await client.post("/webhooks", json=body)).status_code == 401
