"""Notifier port: push a message to one WebSocket connection.

API Gateway Management API `post_to_connection` in AWS; the local WebSocket hub locally.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Notifier(Protocol):
    async def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """Deliver `message` as JSON. False when the connection is gone (the caller forgets it)."""
        ...
