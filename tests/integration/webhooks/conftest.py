"""Webhook fixtures: the repositories on the test database, a recording queue, a settable clock, a real
HTTP receiver, and an app with the webhook routes (built here until the composition root wires them)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from stratus.api.app import create_app
from stratus.api.deps import get_webhooks
from stratus.capabilities.webhooks.service import DELIVER_MESSAGE, WebhookService
from stratus.composition import Container
from stratus.db.repositories.webhooks import WebhookDeliveryRepository, WebhookRepository
from stratus.local.runtime import LocalPorts
from stratus.services.messages import MessageRouter
from tests.integration.api.accounts import Account, register
from tests.integration.webhooks.receiver import Receiver


class RecordingQueue:
    """A MessageQueue that keeps what was sent, so tests run each attempt by hand and see each delay."""

    def __init__(self) -> None:
        self.sent: list[tuple[dict[str, Any], int]] = []

    async def send(
        self, body: Mapping[str, Any], *, delay_seconds: int = 0, deduplication_id: str | None = None
    ) -> str:
        self.sent.append((dict(body), delay_seconds))
        return str(len(self.sent))

    async def ping(self) -> None:
        return None

    def take(self) -> tuple[dict[str, Any], int]:
        return self.sent.pop(0)


class Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(microsecond=0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue() -> RecordingQueue:
    return RecordingQueue()


@pytest.fixture
async def repos(container: Container) -> tuple[WebhookRepository, WebhookDeliveryRepository]:
    db = container.database.db
    webhooks, deliveries = WebhookRepository(db), WebhookDeliveryRepository(db)
    await webhooks.ensure_indexes()
    await deliveries.ensure_indexes()
    return webhooks, deliveries


@pytest.fixture
def make_service(
    repos: tuple[WebhookRepository, WebhookDeliveryRepository], queue: RecordingQueue, clock: Clock
) -> Callable[..., WebhookService]:
    def make(**overrides: Any) -> WebhookService:
        options: dict[str, Any] = {"clock": clock, "allow_private_urls": True, "timeout_s": 2.0}
        options.update(overrides)
        return WebhookService(*repos, options.pop("queue", queue), **options)

    return make


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def app(
    container: Container, ports: LocalPorts, make_service: Callable[..., WebhookService]
) -> AsyncIterator[FastAPI]:
    """The API with a webhook service on a settable clock, deliveries flowing through the real local queue."""
    service = make_service(queue=ports.queue)
    router = MessageRouter()
    router.register(DELIVER_MESSAGE, service.handle_message)
    await ports.queue.start(router.handle)
    app = create_app(container)
    app.dependency_overrides[get_webhooks] = lambda: service
    try:
        yield app
    finally:
        await ports.queue.stop()


@pytest.fixture
async def alice(client: httpx.AsyncClient) -> Account:
    return await register(client, name="Alice")


@pytest.fixture
async def bob(client: httpx.AsyncClient) -> Account:
    return await register(client, name="Bob")
