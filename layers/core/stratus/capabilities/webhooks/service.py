"""Webhooks: users register endpoints; job and dataset events are POSTed to them, signed, with retries.

The wire format follows Standard Webhooks (https://www.standardwebhooks.com), so receivers can verify
with any of its libraries: headers `webhook-id` (the delivery id, the same on every retry, for
de-duplication), `webhook-timestamp` (unix seconds of the attempt) and `webhook-signature`
(`v1,` + base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` keyed with the secret's decoded bytes).

Each delivery is a database record plus a queue message. The HTTP call happens in the queue consumer,
never in the request or event that caused it, so a slow receiver delays nobody; a failed attempt is
retried by re-sending the message with an exponential delay (SQS caps delays at 15 minutes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import logging
import secrets
import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, get_args

from bson import ObjectId

from stratus.capabilities.webhooks.schemas import WebhookEvent
from stratus.capabilities.webhooks.spec import DELIVER_MESSAGE
from stratus.capabilities.webhooks.urls import UnsafeUrl, check_url
from stratus.db.repositories.webhooks import WebhookDeliveryRepository, WebhookRepository
from stratus.errors import DomainError, InvalidInput, NotFound, ServiceUnavailable, ValidationFailed
from stratus.ports.queue import MessageQueue
from stratus.schemas.common import iso_utc, utcnow

log = logging.getLogger(__name__)

TEST_EVENT = "webhook.test"
EVENTS = frozenset(get_args(WebhookEvent))
SECRET_PREFIX = "whsec_"
USER_AGENT = "Stratus-Webhooks/1"
MAX_QUEUE_DELAY_S = 900  # SQS's DelaySeconds limit
TIMESTAMP_TOLERANCE_S = 300  # what Standard Webhooks' libraries accept

Clock = Callable[[], datetime]

if TYPE_CHECKING:
    import httpx

    HttpFactory = Callable[[], httpx.AsyncClient]


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header value for one attempt."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def _json_safe(value: Any) -> Any:
    """Event data as JSON will carry it (datetimes as the API's ISO strings), so the stored payload is
    exactly what every attempt sends."""

    def default(item: Any) -> Any:
        return iso_utc(item) if isinstance(item, datetime) else str(item)

    return json.loads(json.dumps(value, default=default))


def _public(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "secret"}


class WebhookService:
    def __init__(
        self,
        webhooks: WebhookRepository,
        deliveries: WebhookDeliveryRepository,
        queue: MessageQueue,
        *,
        http: HttpFactory | None = None,
        clock: Clock = utcnow,
        max_attempts: int = 6,
        backoff_base_s: int = 10,
        backoff_cap_s: int = MAX_QUEUE_DELAY_S,
        timeout_s: float = 10.0,
        allow_private_urls: bool = False,
    ) -> None:
        self._webhooks = webhooks
        self._deliveries = deliveries
        self._queue = queue
        # Makes a fresh client per attempt: receivers are mostly distinct hosts, so pooling would buy
        # little, and nothing outlives the event loop it was made on. None: httpx's defaults.
        self._http = http
        self._clock = clock
        self.max_attempts = max_attempts
        self._backoff_base_s = backoff_base_s
        self._backoff_cap_s = min(backoff_cap_s, MAX_QUEUE_DELAY_S)
        self._timeout_s = timeout_s
        self._allow_private = allow_private_urls

    @staticmethod
    def verify(
        secret: str,
        headers: Mapping[str, str],
        body: bytes | str,
        *,
        tolerance_s: int = TIMESTAMP_TOLERANCE_S,
        now: float | None = None,
    ) -> bool:
        """What a receiver does: True when a `v1` signature matches and the timestamp is recent."""
        lower = {k.lower(): v for k, v in headers.items()}
        message_id, stamp = lower.get("webhook-id"), lower.get("webhook-timestamp", "")
        if not message_id or not stamp.isdigit():
            return False
        if abs((time.time() if now is None else now) - int(stamp)) > tolerance_s:
            return False
        raw = body.encode() if isinstance(body, str) else body
        try:
            expected = sign(secret, message_id, int(stamp), raw)
        except (binascii.Error, ValueError):
            return False
        offered = lower.get("webhook-signature", "").split()
        # As bytes: compare_digest refuses non-ASCII str, and headers are attacker-controlled.
        return any(hmac.compare_digest(expected.encode(), candidate.encode()) for candidate in offered)

    def backoff_s(self, attempts: int) -> int:
        """Delay before attempt `attempts + 1`: base, doubling, capped."""
        return int(min(self._backoff_base_s * 2 ** (attempts - 1), self._backoff_cap_s))

    # --- endpoints --------------------------------------------------------------------------------

    async def create(
        self, user_id: ObjectId, *, url: str, events: list[str], description: str | None
    ) -> tuple[dict[str, Any], str]:
        """Returns the endpoint and its signing secret, which this response is the only one to show."""
        unknown = sorted(set(events) - EVENTS)
        if unknown or not events:
            message = f"unknown events: {', '.join(unknown)}" if unknown else "at least one event is required"
            raise ValidationFailed(
                f"Invalid events: {message}", details=[{"field": "events", "message": message}]
            )
        await check_url(url, allow_private=self._allow_private)
        secret = new_secret()
        doc = await self._webhooks.create(
            user_id=user_id,
            url=url,
            events=list(dict.fromkeys(events)),
            secret=secret,
            description=description,
        )
        return _public(doc), secret

    async def get(self, user_id: ObjectId, webhook_id: ObjectId) -> dict[str, Any]:
        return _public(await self._owned(user_id, webhook_id))

    async def delete(self, user_id: ObjectId, webhook_id: ObjectId) -> None:
        """Deletes the endpoint and its delivery log; queued retries find nothing and stop."""
        if not await self._webhooks.delete_owned(user_id, webhook_id):
            raise NotFound("Webhook not found")
        await self._deliveries.delete_for_webhook(webhook_id)

    async def deliveries(
        self, user_id: ObjectId, webhook_id: ObjectId, *, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        await self._owned(user_id, webhook_id)
        return await self._deliveries.list_for(user_id, webhook_id, limit=limit, offset=offset)

    async def _owned(self, user_id: ObjectId, webhook_id: ObjectId) -> dict[str, Any]:
        doc = await self._webhooks.get_owned(user_id, webhook_id)
        if doc is None:
            raise NotFound("Webhook not found")
        return doc

    # --- producing deliveries ---------------------------------------------------------------------

    async def dispatch(self, user_id: ObjectId, event: str, data: Mapping[str, Any]) -> int:
        """Queue `event` for each of the user's active endpoints subscribed to it; returns how many."""
        endpoints = await self._webhooks.subscribed(user_id, event)
        queued = 0
        for webhook in endpoints:
            if await self._enqueue(webhook, event, data) is not None:
                queued += 1
        return queued

    async def send_test(self, user_id: ObjectId, webhook_id: ObjectId) -> dict[str, Any]:
        """A `webhook.test` delivery to one endpoint, whatever it subscribes to."""
        webhook = await self._owned(user_id, webhook_id)
        data = {"webhook_id": str(webhook_id), "message": "This is a test delivery from Stratus"}
        delivery = await self._enqueue(webhook, TEST_EVENT, data)
        if delivery is None:
            raise ServiceUnavailable(
                "The test delivery could not be queued; please retry", code="QUEUE_UNAVAILABLE"
            )
        return delivery

    async def _enqueue(
        self, webhook: dict[str, Any], event: str, data: Mapping[str, Any]
    ) -> dict[str, Any] | None:
        """Record the delivery, then queue it. A queue outage fails this delivery (visibly, in the log)
        rather than the job event that caused it: webhooks are a side channel."""
        now = self._clock()
        payload = {"event": event, "timestamp": iso_utc(now), "data": _json_safe(dict(data))}
        delivery = await self._deliveries.create(
            webhook_id=webhook["_id"], user_id=webhook["user_id"], event=event, payload=payload, now=now
        )
        try:
            await self._queue.send({"type": DELIVER_MESSAGE, "delivery_id": str(delivery["_id"])})
        except DomainError as e:
            log.error("webhook delivery %s could not be queued: %s", delivery["_id"], e.message)
            await self._deliveries.fail(delivery["_id"], f"Not queued: {e.message}")
            return None
        return delivery

    # --- delivering (queue consumer) --------------------------------------------------------------

    async def handle_message(self, body: Mapping[str, Any]) -> None:
        """One attempt. Receiver failures are handled here (retry or give up), never raised: raising
        would make SQS redeliver at once, outside the backoff schedule."""
        raw_id = body.get("delivery_id")
        if not isinstance(raw_id, str) or not ObjectId.is_valid(raw_id):
            raise InvalidInput(f"webhook.deliver message without a valid delivery_id: {raw_id!r}")
        delivery = await self._deliveries.get(ObjectId(raw_id))
        if delivery is None or delivery["status"] != "pending":
            return  # deleted with its endpoint, expired, or already settled by an earlier receive
        webhook = await self._webhooks.get(delivery["webhook_id"])
        if webhook is None:
            return
        attempt = int(delivery["attempts"]) + 1
        status_code, error, permanent = await self._post(webhook, delivery)
        now = self._clock()
        changes: dict[str, Any] = {"last_status_code": status_code, "last_error": error}
        delay = None
        if error is None:
            changes |= {"status": "delivered", "delivered_at": now, "next_attempt_at": None}
        elif attempt < self.max_attempts and not permanent:
            delay = self.backoff_s(attempt)
            changes["next_attempt_at"] = now + timedelta(seconds=delay)
        else:
            changes |= {"status": "failed", "next_attempt_at": None}
        if (
            await self._deliveries.record_attempt(delivery["_id"], after_attempts=attempt, changes=changes)
            is None
        ):
            return  # a concurrent receive of the same message recorded this attempt
        if delay is not None:
            await self._queue.send({"type": DELIVER_MESSAGE, "delivery_id": raw_id}, delay_seconds=delay)

    async def _post(
        self, webhook: dict[str, Any], delivery: dict[str, Any]
    ) -> tuple[int | None, str | None, bool]:
        """(status code, error or None, whether retrying is pointless)."""
        try:
            await check_url(webhook["url"], allow_private=self._allow_private)
        except UnsafeUrl as e:
            return None, e.message, not e.transient
        body = json.dumps(delivery["payload"], separators=(",", ":"), ensure_ascii=False).encode()
        message_id, timestamp = str(delivery["_id"]), int(self._clock().timestamp())
        headers = {
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(webhook["secret"], message_id, timestamp, body),
            "content-type": "application/json",
            "user-agent": USER_AGENT,
        }
        # Imported here: only the queue consumer makes HTTP calls, and the API Lambda's cold start
        # should not pay for the client.
        import httpx

        client = self._http() if self._http is not None else httpx.AsyncClient(follow_redirects=False)
        try:
            async with client:
                response = await client.post(
                    webhook["url"], content=body, headers=headers, timeout=self._timeout_s
                )
        except httpx.TimeoutException:
            return None, f"Timed out after {self._timeout_s:g} s", False
        except httpx.HTTPError as e:
            return None, f"{type(e).__name__}: {e}"[:500], False
        if 200 <= response.status_code < 300:
            return response.status_code, None, False
        return response.status_code, f"HTTP {response.status_code}", False

    # Last, so that `list` in the annotations above still means the builtin.
    async def list(self, user_id: ObjectId, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        items, total = await self._webhooks.list_for(user_id, limit=limit, offset=offset)
        return [_public(doc) for doc in items], total
