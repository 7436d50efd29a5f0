"""Webhook deliveries against a real HTTP receiver: fan-out, signatures, retries with backoff, giving up,
timeouts, the SSRF guard, and the at-least-once queue's duplicates."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.adapters.local.queue import LocalQueue
from stratus.capabilities.webhooks.service import DELIVER_MESSAGE, WebhookService
from stratus.db.repositories.webhooks import WebhookDeliveryRepository, WebhookRepository
from stratus.errors import InvalidInput, ServiceUnavailable, ValidationFailed
from tests.integration.webhooks.conftest import Clock, RecordingQueue
from tests.integration.webhooks.receiver import Receiver

Repos = tuple[WebhookRepository, WebhookDeliveryRepository]
MakeService = Callable[..., WebhookService]


async def _endpoint(
    service: WebhookService, user_id: ObjectId, url: str, events: list[str] | None = None
) -> tuple[dict[str, Any], str]:
    return await service.create(user_id, url=url, events=events or ["*"], description=None)


def _verifies(secret: str, receiver: Receiver, clock: Clock) -> bool:
    return all(
        WebhookService.verify(secret, r.headers, r.body, now=clock().timestamp()) for r in receiver.requests
    )


def test_signatures_match_the_standard_webhooks_test_vector() -> None:
    # The published vector: any Standard Webhooks library accepts what we send.
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    headers = {
        "Webhook-Id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "Webhook-Timestamp": "1614265330",
        "Webhook-Signature": "v1,bm9wZQ== v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }
    body = b'{"test": 2432232314}'
    assert WebhookService.verify(secret, headers, body, now=1614265330)
    assert WebhookService.verify(secret, headers, body.decode(), now=1614265330 + 299)
    # Stale or future timestamps, other bodies, other secrets, missing headers: refused.
    assert not WebhookService.verify(secret, headers, body, now=1614265330 + 301)
    assert not WebhookService.verify(secret, headers, body, now=1614265330 - 301)
    assert not WebhookService.verify(secret, headers, b'{"test": 2432232315}', now=1614265330)
    assert not WebhookService.verify("whsec_" + "A" * 32, headers, body, now=1614265330)
    assert not WebhookService.verify("whsec_not*base64", headers, body, now=1614265330)
    assert not WebhookService.verify(secret, {**headers, "Webhook-Signature": ""}, body, now=1614265330)
    assert not WebhookService.verify(secret, {}, body, now=1614265330)
    assert not WebhookService.verify(secret, {**headers, "Webhook-Signature": "v1,é"}, body, now=1614265330)


def test_backoff_doubles_from_ten_seconds_up_to_the_sqs_maximum(make_service: MakeService) -> None:
    service = make_service()
    assert [service.backoff_s(n) for n in range(1, 10)] == [10, 20, 40, 80, 160, 320, 640, 900, 900]


async def test_dispatch_fans_out_to_subscribed_active_endpoints_of_that_user(
    make_service: MakeService, queue: RecordingQueue, repos: Repos, clock: Clock
) -> None:
    # GIVEN Alice's endpoints: one for the event, one for everything, one for another event, one paused;
    # and Bob's, for the same event
    service = make_service()
    alice, bob = ObjectId(), ObjectId()
    url = "http://127.0.0.1:9/hook"
    exact, _ = await _endpoint(service, alice, url, ["training.completed"])
    everything, _ = await _endpoint(service, alice, url, ["*"])
    await _endpoint(service, alice, url, ["dataset.processed"])
    paused, _ = await _endpoint(service, alice, url, ["training.completed"])
    await repos[0].collection.update_one({"_id": paused["_id"]}, {"$set": {"active": False}})
    await _endpoint(service, bob, url, ["training.completed"])
    # WHEN a training job of Alice's completes
    job_id, finished = ObjectId(), datetime(2025, 11, 10, 12, 0, tzinfo=UTC)
    data = {"job_id": job_id, "finished_at": finished, "metrics": {"accuracy": 0.93}}
    count = await service.dispatch(alice, "training.completed", data)
    # THEN exactly her two matching endpoints get a queued delivery
    assert count == 2
    messages = [body for body, delay in queue.sent if delay == 0]
    assert len(messages) == len(queue.sent) == 2
    assert {m["type"] for m in messages} == {DELIVER_MESSAGE}
    stored = [await repos[1].get(ObjectId(m["delivery_id"])) for m in messages]
    assert {d["webhook_id"] for d in stored if d} == {exact["_id"], everything["_id"]}
    # AND each payload is stored as JSON will carry it, with the event time in UTC
    for delivery in stored:
        assert delivery is not None and delivery["status"] == "pending" and delivery["attempts"] == 0
        assert delivery["payload"] == {
            "event": "training.completed",
            "timestamp": clock().isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "data": {
                "job_id": str(job_id),
                "finished_at": "2025-11-10T12:00:00.000Z",
                "metrics": {"accuracy": 0.93},
            },
        }
    assert await service.dispatch(alice, "training.progress", {}) == 1  # only "*"
    assert await service.dispatch(ObjectId(), "training.completed", {}) == 0


async def test_a_failing_receiver_is_retried_with_backoff_until_it_answers(
    make_service: MakeService, queue: RecordingQueue, receiver: Receiver, repos: Repos, clock: Clock
) -> None:
    # GIVEN a receiver that fails twice, then succeeds
    service = make_service()
    receiver.answer([500, 503, 204])
    user = ObjectId()
    webhook, secret = await _endpoint(service, user, receiver.url)
    await service.dispatch(user, "training.started", {"job_id": "j1"})
    # WHEN the queue delivers each message when its delay is up
    delays = []
    while queue.sent:
        message, delay = queue.take()
        delays.append(delay)
        clock.advance(delay)
        await service.handle_message(message)
    # THEN the retries waited 10 s, then 20 s, and the third attempt got through
    assert delays == [0, 10, 20]
    assert len(receiver.requests) == 3
    # AND every attempt carried the same webhook-id, a fresh timestamp and a valid signature
    assert len({r.headers["webhook-id"] for r in receiver.requests}) == 1
    assert len({r.headers["webhook-timestamp"] for r in receiver.requests}) == 3
    assert _verifies(secret, receiver, clock)
    assert len({r.body for r in receiver.requests}) == 1
    [delivery], total = await service.deliveries(user, webhook["_id"], limit=10, offset=0)
    assert total == 1 and delivery["status"] == "delivered" and delivery["attempts"] == 3
    assert delivery["last_status_code"] == 204 and delivery["last_error"] is None
    assert delivery["delivered_at"] is not None and delivery["next_attempt_at"] is None


async def test_a_delivery_fails_after_max_attempts(
    make_service: MakeService, queue: RecordingQueue, receiver: Receiver, clock: Clock
) -> None:
    service = make_service()
    receiver.default_status = 500
    user = ObjectId()
    webhook, _ = await _endpoint(service, user, receiver.url)
    await service.dispatch(user, "training.failed", {"error": "OOM"})
    delays = []
    while queue.sent:
        message, delay = queue.take()
        delays.append(delay)
        clock.advance(delay)
        await service.handle_message(message)
    assert delays == [0, 10, 20, 40, 80, 160]
    assert len(receiver.requests) == service.max_attempts == 6
    [delivery], _ = await service.deliveries(user, webhook["_id"], limit=10, offset=0)
    assert delivery["status"] == "failed" and delivery["attempts"] == 6
    assert delivery["last_status_code"] == 500 and delivery["last_error"] == "HTTP 500"
    # A late duplicate of the last message changes nothing.
    await service.handle_message({"type": DELIVER_MESSAGE, "delivery_id": str(delivery["_id"])})
    assert len(receiver.requests) == 6 and queue.sent == []


async def test_timeouts_and_refused_connections_count_as_failed_attempts(
    make_service: MakeService, queue: RecordingQueue, receiver: Receiver, clock: Clock
) -> None:
    service = make_service(timeout_s=0.3)
    receiver.answer(["hang"])
    user = ObjectId()
    slow, _ = await _endpoint(service, user, receiver.url)
    closed, _ = await _endpoint(service, user, "http://127.0.0.1:9/nothing-listens")
    await service.dispatch(user, "dataset.processed", {"dataset_id": "d1"})
    for _ in range(2):
        message, _ = queue.take()
        await service.handle_message(message)
    retries = sorted(queue.sent, key=lambda sent: sent[0]["delivery_id"])
    assert [delay for _, delay in retries] == [10, 10]
    errors = {}
    for webhook in (slow, closed):
        [delivery], _ = await service.deliveries(user, webhook["_id"], limit=1, offset=0)
        assert delivery["status"] == "pending" and delivery["attempts"] == 1
        assert delivery["next_attempt_at"] == clock() + timedelta(seconds=10)
        errors[webhook["_id"]] = delivery["last_error"]
    assert errors[slow["_id"]] == "Timed out after 0.3 s"
    assert errors[closed["_id"]].startswith("ConnectError")


async def test_the_real_local_queue_honours_the_retry_delay(
    make_service: MakeService, receiver: Receiver
) -> None:
    # GIVEN the in-process queue (SQS's stand-in) consuming deliveries, with 1-second backoff
    local = LocalQueue()
    service = make_service(queue=local, backoff_base_s=1)
    await local.start(service.handle_message)
    try:
        receiver.answer([502])
        user = ObjectId()
        webhook, secret = await _endpoint(service, user, receiver.url)
        await service.dispatch(user, "training.completed", {"job_id": "j"})
        await local.wait_idle(15)
    finally:
        await local.stop()
    assert len(receiver.requests) == 2
    assert all(WebhookService.verify(secret, r.headers, r.body) for r in receiver.requests)
    [delivery], _ = await service.deliveries(user, webhook["_id"], limit=1, offset=0)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 2
    assert json.loads(receiver.requests[1].body)["data"] == {"job_id": "j"}


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/hook",
        "http://localhost/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://10.1.2.3/hook",
        "http://192.168.0.10/hook",
        "http://[::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "ftp://93.184.215.14/hook",
        "https:///no-host",
        "http://93.184.215.14:99999/bad-port",
    ],
)
async def test_production_refuses_private_and_malformed_urls(make_service: MakeService, url: str) -> None:
    service = make_service(allow_private_urls=False)
    with pytest.raises(ValidationFailed) as refused:
        await _endpoint(service, ObjectId(), url)
    assert refused.value.code == "INVALID_WEBHOOK_URL"
    assert refused.value.details == [{"field": "url", "message": refused.value.message.split(": ", 1)[1]}]


async def test_production_accepts_public_addresses(make_service: MakeService) -> None:
    service = make_service(allow_private_urls=False)
    webhook, _ = await _endpoint(service, ObjectId(), "https://93.184.215.14/hook")
    assert webhook["url"] == "https://93.184.215.14/hook" and "secret" not in webhook


async def test_a_url_that_became_private_is_not_posted_to(
    make_service: MakeService, queue: RecordingQueue, repos: Repos, receiver: Receiver
) -> None:
    # GIVEN an endpoint whose address is private by the time it is delivered to (DNS changed)
    service = make_service(allow_private_urls=False)
    user = ObjectId()
    webhook, _ = await _endpoint(service, user, "https://93.184.215.14/hook")
    await repos[0].collection.update_one({"_id": webhook["_id"]}, {"$set": {"url": receiver.url}})
    await service.dispatch(user, "training.completed", {})
    # WHEN the delivery runs
    await service.handle_message(queue.take()[0])
    # THEN nothing is sent, and it fails at once: retrying cannot help
    assert receiver.requests == [] and queue.sent == []
    [delivery], _ = await service.deliveries(user, webhook["_id"], limit=1, offset=0)
    assert delivery["status"] == "failed" and "private" in delivery["last_error"]


async def test_duplicates_and_deleted_endpoints_are_ignored(
    make_service: MakeService, queue: RecordingQueue, receiver: Receiver
) -> None:
    service = make_service()
    user = ObjectId()
    kept, _ = await _endpoint(service, user, receiver.url)
    dropped, _ = await _endpoint(service, user, receiver.url)
    await service.dispatch(user, "training.completed", {})
    messages = [queue.take()[0] for _ in range(2)]
    await service.delete(user, dropped["_id"])
    for message in messages + messages:  # SQS may deliver any message twice
        await service.handle_message(message)
    assert len(receiver.requests) == 1 and queue.sent == []
    [delivery], _ = await service.deliveries(user, kept["_id"], limit=1, offset=0)
    assert delivery["status"] == "delivered" and delivery["attempts"] == 1


class DownQueue(RecordingQueue):
    async def send(
        self, body: Mapping[str, Any], *, delay_seconds: int = 0, deduplication_id: str | None = None
    ) -> str:
        raise ServiceUnavailable("Queue unavailable")


async def test_a_queue_outage_fails_the_delivery_not_the_event(make_service: MakeService) -> None:
    service = make_service(queue=DownQueue())
    user = ObjectId()
    webhook, _ = await _endpoint(service, user, "http://127.0.0.1:9/hook")
    assert await service.dispatch(user, "training.completed", {}) == 0
    [delivery], _ = await service.deliveries(user, webhook["_id"], limit=1, offset=0)
    assert delivery["status"] == "failed" and delivery["last_error"] == "Not queued: Queue unavailable"
    with pytest.raises(ServiceUnavailable):
        await service.send_test(user, webhook["_id"])


async def test_malformed_messages_are_rejected_for_the_dead_letter_queue(make_service: MakeService) -> None:
    service = make_service()
    for body in ({"type": DELIVER_MESSAGE}, {"type": DELIVER_MESSAGE, "delivery_id": "nope"}):
        with pytest.raises(InvalidInput):
            await service.handle_message(body)
    await service.handle_message({"type": DELIVER_MESSAGE, "delivery_id": str(ObjectId())})  # gone: no-op


async def test_the_delivery_log_expires_after_30_days(repos: Repos) -> None:
    indexes = await repos[1].collection.index_information()
    assert indexes["created_ttl"]["expireAfterSeconds"] == 30 * 24 * 3600


async def test_redirects_are_not_followed(
    make_service: MakeService, queue: RecordingQueue, receiver: Receiver
) -> None:
    # A redirect could lead the request somewhere the URL check never saw.
    service = make_service()
    receiver.answer([302])
    user = ObjectId()
    webhook, _ = await _endpoint(service, user, receiver.url)
    await service.dispatch(user, "training.completed", {})
    await service.handle_message(queue.take()[0])
    assert len(receiver.requests) == 1 and queue.sent[0][1] == 10
    [delivery], _ = await service.deliveries(user, webhook["_id"], limit=1, offset=0)
    assert delivery["last_status_code"] == 302 and delivery["last_error"] == "HTTP 302"


async def test_an_injected_http_client_is_used(make_service: MakeService, queue: RecordingQueue) -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    service = make_service(http=lambda: httpx.AsyncClient(transport=httpx.MockTransport(answer)))
    user = ObjectId()
    _, secret = await _endpoint(service, user, "https://hooks.example.com/stratus")
    await service.dispatch(user, "dataset.processed", {"dataset_id": "d"})
    await service.handle_message(queue.take()[0])
    [request] = seen
    assert str(request.url) == "https://hooks.example.com/stratus"
    assert WebhookService.verify(secret, request.headers, request.content)
