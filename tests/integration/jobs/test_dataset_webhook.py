"""dataset.processed reaches a user's webhook through the same path as job events: bus -> events
service -> delivery queue -> signed POST."""

from __future__ import annotations

import asyncio
import json

import httpx

from stratus.capabilities.webhooks.service import WebhookService
from stratus.composition import Container
from stratus.local.runtime import LocalConsumers, LocalPorts
from tests.integration.api.accounts import Account
from tests.integration.webhooks.receiver import Receiver


async def test_dataset_processed_webhook_is_delivered_signed(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    receiver = Receiver()
    await receiver.start()
    consumers = LocalConsumers(container, ports, sweep_every_s=3600)
    await consumers.start()
    try:
        hook = await client.post(
            "/api/webhooks",
            headers=alice.headers,
            json={"url": receiver.url, "events": ["dataset.processed"]},
        )
        assert hook.status_code == 201, hook.text
        upload = await client.post(
            "/api/datasets/upload", headers=alice.headers, files={"file": ("d.csv", b"a,b\n1,2\n3,4\n")}
        )
        assert upload.status_code == 201
        async with asyncio.timeout(10):
            while not receiver.requests:
                await asyncio.sleep(0.05)
    finally:
        await consumers.stop()
        await receiver.stop()
    [request] = receiver.requests
    payload = json.loads(request.body)
    assert payload["event"] == "dataset.processed"
    assert payload["data"] == {
        "dataset_id": upload.json()["_id"],
        "status": "ready",
        "error": None,
        "row_count": 2,
    }
    assert WebhookService.verify(hook.json()["secret"], request.headers, request.body)
