"""Message queue port (SQS in AWS, an in-process queue locally)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class MessageQueue(Protocol):
    """At-least-once delivery of JSON messages to one consumer group."""

    async def send(
        self,
        body: Mapping[str, Any],
        *,
        delay_seconds: int = 0,
        deduplication_id: str | None = None,
    ) -> str:
        """Enqueue `body`; returns the queue's message id. Raises ServiceUnavailable when unreachable."""
        ...

    async def ping(self) -> None:
        """Raise ServiceUnavailable when the queue cannot be reached (readiness probes)."""
        ...
