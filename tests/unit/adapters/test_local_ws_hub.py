"""LocalWebSocketHub: the connection registry behind the local WebSocket endpoint."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest

from stratus.adapters.local.ws_hub import MAX_MESSAGE_BYTES, LocalWebSocketHub
from stratus.errors import InvalidInput


class Socket:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    async def send_json(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


async def test_send_delivers_json_to_a_registered_connection() -> None:
    hub = LocalWebSocketHub()
    socket = Socket()
    hub.register("c1", socket.send_json)

    when = datetime(2025, 1, 1, tzinfo=UTC)
    delivered = await hub.send("c1", {"type": "job.progress", "data": {"at": when, "pct": 50}})

    assert delivered is True
    assert socket.sent == [{"type": "job.progress", "data": {"at": str(when), "pct": 50}}]
    assert hub.connections == {"c1"}


async def test_unknown_connection_answers_false() -> None:
    assert await LocalWebSocketHub().send("nobody", {"type": "x"}) is False


async def test_a_broken_connection_answers_false_and_is_forgotten() -> None:
    hub = LocalWebSocketHub()

    async def closed(_: dict[str, Any]) -> None:
        raise RuntimeError("Cannot call send once a close message has been sent")

    hub.register("c1", closed)
    assert await hub.send("c1", {"type": "x"}) is False
    assert hub.connections == frozenset()


async def test_unregister_is_idempotent() -> None:
    hub = LocalWebSocketHub()
    hub.register("c1", Socket().send_json)
    hub.unregister("c1")
    hub.unregister("c1")
    assert hub.connections == frozenset()
    assert await hub.send("c1", {"type": "x"}) is False


async def test_oversized_messages_are_refused() -> None:
    hub = LocalWebSocketHub()
    hub.register("c1", Socket().send_json)
    with pytest.raises(InvalidInput):
        await hub.send("c1", {"blob": "x" * MAX_MESSAGE_BYTES})


async def test_concurrent_sends_to_one_connection_do_not_interleave() -> None:
    hub = LocalWebSocketHub()
    log: list[str] = []

    async def slow(message: dict[str, Any]) -> None:
        log.append(f"start {message['n']}")
        await asyncio.sleep(0.01)
        log.append(f"end {message['n']}")

    hub.register("c1", slow)
    results = await asyncio.gather(*(hub.send("c1", {"n": n}) for n in range(3)))

    assert results == [True, True, True]
    assert log == ["start 0", "end 0", "start 1", "end 1", "start 2", "end 2"]
