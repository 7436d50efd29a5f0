"""Notifier for the local WebSocket endpoint: what API Gateway's connection registry does on AWS.

`stratus.local.websocket` registers each accepted connection's `send_json`; services push to a
connection id exactly as they would through `post_to_connection`, and a connection that is gone
answers False so the caller forgets it.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stratus.errors import InvalidInput

SendJson = Callable[[dict[str, Any]], Awaitable[None]]

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's WebSocket frame limit

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Connection:
    send_json: SendJson
    # One message at a time per connection, so concurrent notifications arrive whole and in order.
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)


class LocalWebSocketHub:
    def __init__(self) -> None:
        self._connections: dict[str, _Connection] = {}

    @property
    def connections(self) -> frozenset[str]:
        """The ids of the connections currently registered."""
        return frozenset(self._connections)

    def register(self, connection_id: str, send_json: SendJson) -> None:
        """Add (or replace) a connection."""
        self._connections[connection_id] = _Connection(send_json)

    def unregister(self, connection_id: str) -> None:
        """Forget a connection; unknown ids are ignored."""
        self._connections.pop(connection_id, None)

    async def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """Deliver `message` as JSON; False (and the connection forgotten) when it is unknown or broken.

        Oversized messages raise InvalidInput, as they do on API Gateway.
        """
        data = json.dumps(message, separators=(",", ":"), default=str)
        if len(data.encode()) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"WebSocket message exceeds {MAX_MESSAGE_BYTES} bytes")
        connection = self._connections.get(connection_id)
        if connection is None:
            return False
        try:
            async with connection.lock:
                await connection.send_json(json.loads(data))
        except Exception:
            log.info("WebSocket connection %s is gone; forgetting it", connection_id, exc_info=True)
            # Only if it was not re-registered meanwhile under the same id.
            if self._connections.get(connection_id) is connection:
                del self._connections[connection_id]
            return False
        return True
