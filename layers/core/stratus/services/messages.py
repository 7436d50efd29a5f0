"""Routes queue messages to the service that handles them, by the message's `type`.

The same router runs behind the SQS dispatcher Lambda and behind the local in-process queue.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from stratus.errors import InvalidInput

Handler = Callable[[Mapping[str, Any]], Awaitable[None]]


class MessageRouter:
    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def register(self, message_type: str, handler: Handler) -> None:
        if message_type in self._handlers:
            raise ValueError(f"a handler for {message_type!r} is already registered")
        self._handlers[message_type] = handler

    @property
    def types(self) -> list[str]:
        return sorted(self._handlers)

    async def handle(self, body: Mapping[str, Any]) -> None:
        """Run the handler; an exception leaves the message to be redelivered (and dead-lettered)."""
        message_type = body.get("type")
        handler = self._handlers.get(message_type) if isinstance(message_type, str) else None
        if handler is None:
            raise InvalidInput(f"No handler for message type {message_type!r}", code="UNKNOWN_MESSAGE")
        await handler(body)
