"""LocalQueue: SQS's contract in process (JSON bodies, delays, deduplication, redelivery, dead letters)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from stratus.adapters.local import queue as queue_module
from stratus.adapters.local.queue import LocalQueue
from stratus.errors import InvalidInput


@pytest.fixture
async def queue() -> AsyncIterator[LocalQueue]:
    q = LocalQueue(max_receive_count=3, retry_delay_s=0.01)
    try:
        yield q
    finally:
        await q.stop(grace_s=0.1)


class Recorder:
    def __init__(self, fail_times: int = 0) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.fail_times = fail_times

    async def __call__(self, body: dict[str, Any]) -> None:
        self.bodies.append(body)
        if len(self.bodies) <= self.fail_times:
            raise RuntimeError(f"boom {len(self.bodies)}")


async def test_a_sent_message_reaches_the_handler_as_json(queue: LocalQueue) -> None:
    handler = Recorder()
    await queue.start(handler)

    message_id = await queue.send({"type": "process", "ids": ("a", "b"), "n": 1})
    await queue.wait_idle(2)

    # THEN the handler saw the JSON round trip (a tuple arrives as a list), and the id is a fresh uuid
    assert handler.bodies == [{"type": "process", "ids": ["a", "b"], "n": 1}]
    assert len(message_id) == 36
    assert queue.pending == 0
    assert queue.dead_letters == []


@pytest.mark.parametrize(
    "body",
    [{"when": datetime.now(UTC)}, {"obj": object()}, {"nan": float("nan")}, {(1, 2): "tuple key"}],
)
async def test_non_json_bodies_are_refused_at_send(queue: LocalQueue, body: dict[Any, Any]) -> None:
    with pytest.raises(InvalidInput):
        await queue.send(body)
    assert queue.pending == 0


async def test_oversized_bodies_and_bad_delays_are_refused(queue: LocalQueue) -> None:
    with pytest.raises(InvalidInput, match="exceeds"):
        await queue.send({"blob": "x" * queue_module.MAX_MESSAGE_BYTES})
    for delay in (-1, queue_module.MAX_DELAY_S + 1):
        with pytest.raises(InvalidInput, match="delay_seconds"):
            await queue.send({"n": 1}, delay_seconds=delay)


async def test_deduplication_id_returns_the_original_id_within_the_window(
    queue: LocalQueue, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = Recorder()
    await queue.start(handler)

    first = await queue.send({"n": 1}, deduplication_id="d1")
    again = await queue.send({"n": 2}, deduplication_id="d1")
    other = await queue.send({"n": 3}, deduplication_id="d2")
    await queue.wait_idle(2)
    assert again == first != other
    assert handler.bodies == [{"n": 1}, {"n": 3}]

    # WHEN the five-minute window has passed THEN the same id enqueues again
    now = time.monotonic()
    later_clock = SimpleNamespace(monotonic=lambda: now + queue_module.DEDUP_WINDOW_S + 1)
    monkeypatch.setattr(queue_module, "time", later_clock)  # the queue's clock only, not the event loop's
    later = await queue.send({"n": 4}, deduplication_id="d1")
    await queue.wait_idle(2)
    assert later != first
    assert handler.bodies[-1] == {"n": 4}


async def test_delay_holds_the_message_back(queue: LocalQueue) -> None:
    handler = Recorder()
    await queue.start(handler)
    started = time.monotonic()

    await queue.send({"later": True}, delay_seconds=1)
    await queue.send({"now": True})
    await asyncio.sleep(0.2)
    assert handler.bodies == [{"now": True}]
    assert queue.pending == 1  # the delayed one still counts: join waits for it

    await queue.wait_idle(3)
    assert handler.bodies == [{"now": True}, {"later": True}]
    assert time.monotonic() - started >= 1.0


async def test_a_failing_message_is_redelivered_then_dead_lettered(queue: LocalQueue) -> None:
    handler = Recorder(fail_times=99)
    await queue.start(handler)

    await queue.send({"type": "poison"})
    await queue.wait_idle(2)

    # THEN exactly max_receive_count attempts, then the body and the last error in the dead letters
    assert handler.bodies == [{"type": "poison"}] * 3
    assert queue.dead_letters == [({"type": "poison"}, "RuntimeError: boom 3")]
    assert queue.pending == 0


async def test_a_transient_failure_is_retried_and_succeeds(queue: LocalQueue) -> None:
    handler = Recorder(fail_times=1)
    await queue.start(handler)

    await queue.send({"n": 1})
    await queue.wait_idle(2)

    assert len(handler.bodies) == 2
    assert queue.dead_letters == []


async def test_each_delivery_gets_a_fresh_body(queue: LocalQueue) -> None:
    seen: list[dict[str, Any]] = []

    async def mutating(body: dict[str, Any]) -> None:
        seen.append(dict(body))
        body["tampered"] = True
        raise RuntimeError("retry me")

    await queue.start(mutating)
    await queue.send({"n": 1})
    await queue.wait_idle(2)

    assert seen == [{"n": 1}] * 3  # a handler's edits never leak into the redelivery
    assert queue.dead_letters[0][0] == {"n": 1}


async def test_messages_sent_before_start_wait_for_a_consumer(queue: LocalQueue) -> None:
    await queue.send({"n": 1})
    await queue.send({"n": 2})
    with pytest.raises(TimeoutError):
        await queue.wait_idle(0.05)

    handler = Recorder()
    await queue.start(handler)
    await queue.wait_idle(2)
    assert sorted(b["n"] for b in handler.bodies) == [1, 2]


async def test_start_twice_is_refused(queue: LocalQueue) -> None:
    await queue.start(Recorder())
    with pytest.raises(RuntimeError):
        await queue.start(Recorder())


async def test_stop_cancels_a_stuck_handler_and_keeps_its_message(queue: LocalQueue) -> None:
    # GIVEN a handler that never finishes
    entered = asyncio.Event()

    async def stuck(body: dict[str, Any]) -> None:
        entered.set()
        await asyncio.Event().wait()

    await queue.start(stuck)
    await queue.send({"n": 1})
    await asyncio.wait_for(entered.wait(), 2)

    # WHEN the queue stops with a short grace period
    await queue.stop(grace_s=0.05)

    # THEN the message is still pending, not dead-lettered, and a new consumer gets it
    assert queue.pending == 1
    assert queue.dead_letters == []
    handler = Recorder()
    await queue.start(handler)
    await queue.wait_idle(2)
    assert handler.bodies == [{"n": 1}]


async def test_stop_lets_an_in_flight_handler_finish_within_the_grace_period(queue: LocalQueue) -> None:
    done: list[int] = []

    async def slow(body: dict[str, Any]) -> None:
        await asyncio.sleep(0.1)
        done.append(body["n"])

    await queue.start(slow)
    await queue.send({"n": 1})
    await asyncio.sleep(0.02)
    await queue.stop(grace_s=2)

    assert done == [1]
    assert queue.pending == 0


async def test_concurrency_runs_handlers_side_by_side() -> None:
    queue = LocalQueue(concurrency=3)
    running = 0
    peak = 0

    async def slow(_: dict[str, Any]) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.05)
        running -= 1

    await queue.start(slow)
    try:
        for n in range(6):
            await queue.send({"n": n})
        await queue.wait_idle(2)
    finally:
        await queue.stop()
    assert peak == 3


async def test_ping_succeeds(queue: LocalQueue) -> None:
    await queue.ping()
