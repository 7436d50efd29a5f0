"""LocalEventBus: EventBridge-style routing in process, delivered asynchronously."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from typing import Any

import pytest

from stratus.adapters.local.bus import MAX_EVENT_BYTES, LocalEventBus
from stratus.errors import InvalidInput
from stratus.ports.events import Event


class Inbox:
    def __init__(self) -> None:
        self.envelopes: list[dict[str, Any]] = []

    async def __call__(self, envelope: dict[str, Any]) -> None:
        self.envelopes.append(envelope)


async def test_events_reach_only_the_matching_subscriptions() -> None:
    bus = LocalEventBus()
    processed, failed_only = Inbox(), Inbox()
    bus.subscribe({"detail-type": ["dataset.processed"]}, processed)
    bus.subscribe({"detail-type": ["dataset.processed"], "detail": {"status": ["failed"]}}, failed_only)

    await bus.publish([Event("dataset.processed", {"status": "ready", "n": 1})])
    await bus.publish([Event("job.changed", {"status": "failed"})])
    await bus.drain()

    assert [e["detail"] for e in processed.envelopes] == [{"status": "ready", "n": 1}]
    assert failed_only.envelopes == []
    envelope = processed.envelopes[0]
    assert envelope["source"] == "stratus.jobs"
    assert envelope["detail-type"] == "dataset.processed"
    assert envelope["version"] == "0"
    assert envelope["time"].endswith("Z")


async def test_publish_does_not_wait_for_handlers() -> None:
    bus = LocalEventBus()
    release = asyncio.Event()
    finished: list[str] = []

    async def slow(envelope: dict[str, Any]) -> None:
        await release.wait()
        finished.append(envelope["id"])

    bus.subscribe({"source": ["stratus.jobs"]}, slow)
    event = Event("x", {})
    await asyncio.wait_for(bus.publish([event]), 1)  # returns although the handler is blocked
    assert finished == []

    release.set()
    await bus.drain()
    assert finished == [event.id]


async def test_a_failing_handler_is_logged_and_does_not_affect_others(
    caplog: pytest.LogCaptureFixture,
) -> None:
    bus = LocalEventBus()
    inbox = Inbox()

    async def broken(_: dict[str, Any]) -> None:
        raise RuntimeError("handler bug")

    bus.subscribe({"detail-type": ["x"]}, broken)
    bus.subscribe({"detail-type": ["x"]}, inbox)
    with caplog.at_level(logging.ERROR, logger="stratus.adapters.local.bus"):
        await bus.publish([Event("x", {"k": 1})])
        await bus.drain()

    assert len(inbox.envelopes) == 1
    assert any("handler bug" in (r.exc_text or "") for r in caplog.records)


def test_an_invalid_pattern_fails_at_subscribe() -> None:
    bus = LocalEventBus()
    with pytest.raises(ValueError):
        bus.subscribe({"detail-type": "not-a-list"}, Inbox())


async def test_handlers_get_json_types_and_their_own_copy() -> None:
    bus = LocalEventBus()
    seen: list[dict[str, Any]] = []

    async def mutating(envelope: dict[str, Any]) -> None:
        envelope["detail"]["mutated"] = True

    async def observing(envelope: dict[str, Any]) -> None:
        seen.append(envelope)

    bus.subscribe({"detail-type": ["x"]}, mutating)
    bus.subscribe({"detail-type": ["x"]}, observing)
    when = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    await bus.publish([Event("x", {"at": when, "tags": ("a",)})])
    await bus.drain()

    # THEN a datetime arrives as a string and a tuple as a list, as EventBridge would deliver them
    assert seen[0]["detail"] == {"at": str(when), "tags": ["a"]}
    assert bus.published[-1]["detail"] == {"at": str(when), "tags": ["a"]}


async def test_unsubscribe_stops_delivery() -> None:
    bus = LocalEventBus()
    inbox = Inbox()
    unsubscribe = bus.subscribe({"detail-type": ["x"]}, inbox)
    unsubscribe()
    unsubscribe()  # idempotent
    await bus.publish([Event("x", {})])
    await bus.drain()
    assert inbox.envelopes == []


async def test_drain_waits_for_events_published_by_handlers() -> None:
    bus = LocalEventBus()
    inbox = Inbox()

    async def relay(envelope: dict[str, Any]) -> None:
        await asyncio.sleep(0.01)
        await bus.publish([Event("second", {"from": envelope["id"]})])

    bus.subscribe({"detail-type": ["first"]}, relay)
    bus.subscribe({"detail-type": ["second"]}, inbox)
    first = Event("first", {})
    await bus.publish([first])
    await bus.drain()

    assert [e["detail"] for e in inbox.envelopes] == [{"from": first.id}]


async def test_history_keeps_the_last_envelopes() -> None:
    bus = LocalEventBus(history=3)
    await bus.publish([Event("x", {"n": n}) for n in range(5)])
    assert [e["detail"]["n"] for e in bus.published] == [2, 3, 4]


async def test_an_oversized_event_is_refused_before_any_is_delivered() -> None:
    bus = LocalEventBus()
    inbox = Inbox()
    bus.subscribe({"detail-type": ["x"]}, inbox)

    with pytest.raises(InvalidInput, match="exceeds"):
        await bus.publish([Event("x", {"ok": True}), Event("x", {"blob": "x" * MAX_EVENT_BYTES})])
    await bus.drain()

    assert inbox.envelopes == []
    assert bus.published == []
