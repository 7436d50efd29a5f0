"""EventBus in process: EventBridge rules become subscriptions, matched with the same pattern language.

Delivery is asynchronous, as with EventBridge: `publish` returns once the events are accepted, and each
matching handler runs in its own task. A failing handler is logged and does not affect the publisher
or the other subscribers.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stratus.adapters.event_pattern import Predicate, compile_pattern
from stratus.errors import InvalidInput
from stratus.ports.events import Event

EventHandler = Callable[[dict[str, Any]], Awaitable[None]]

MAX_EVENT_BYTES = 256 * 1024  # PutEvents' limit
HISTORY = 1000

log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class _Subscription:
    pattern: Mapping[str, Any]
    matches: Predicate
    handler: EventHandler


class LocalEventBus:
    def __init__(self, *, history: int = HISTORY) -> None:
        self.history = history
        # The last `history` envelopes published, oldest first, for debugging and tests.
        self.published: list[dict[str, Any]] = []
        self._subscriptions: list[_Subscription] = []
        self._tasks: set[asyncio.Task[None]] = set()

    def subscribe(self, pattern: Mapping[str, Any], handler: EventHandler) -> Callable[[], None]:
        """Route matching events to `handler`; returns a function that unsubscribes.

        The pattern is compiled now, so an invalid one fails here (ValueError), as `PutRule` would.
        """
        subscription = _Subscription(dict(pattern), compile_pattern(pattern), handler)
        self._subscriptions.append(subscription)

        def unsubscribe() -> None:
            if subscription in self._subscriptions:
                self._subscriptions.remove(subscription)

        return unsubscribe

    async def publish(self, events: Sequence[Event]) -> None:
        """Accept all the events, then start their deliveries; never waits for the handlers."""
        # Serialised up front like EventBridgeBus, so an oversized event is refused before any is delivered,
        # and handlers see JSON types (a datetime in `detail` arrives as a string, as on AWS).
        payloads = [self._serialise(event) for event in events]
        for payload in payloads:
            envelope: dict[str, Any] = json.loads(payload)
            self.published.append(envelope)
            for subscription in list(self._subscriptions):
                if subscription.matches(envelope):
                    self._spawn(subscription, json.loads(payload))
        if len(self.published) > self.history:
            del self.published[: -self.history]

    async def drain(self) -> None:
        """Wait until every handler has finished, including those started by events handlers publish."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    @staticmethod
    def _serialise(event: Event) -> str:
        payload = json.dumps(event.envelope(), separators=(",", ":"), default=str)
        if len(payload.encode()) > MAX_EVENT_BYTES:
            raise InvalidInput(f"Event {event.detail_type!r} exceeds the {MAX_EVENT_BYTES}-byte limit")
        return payload

    def _spawn(self, subscription: _Subscription, envelope: dict[str, Any]) -> None:
        task = asyncio.create_task(self._deliver(subscription, envelope))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _deliver(subscription: _Subscription, envelope: dict[str, Any]) -> None:
        try:
            await subscription.handler(envelope)
        except Exception:
            log.exception(
                "event handler %s failed for %s event %s",
                getattr(subscription.handler, "__qualname__", repr(subscription.handler)),
                envelope.get("detail-type"),
                envelope.get("id"),
            )
