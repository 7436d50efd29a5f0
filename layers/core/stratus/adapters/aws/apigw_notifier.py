"""Notifier on the API Gateway Management API (`post_to_connection` to one WebSocket connection)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import error_code, http_status, translate
from stratus.errors import InvalidInput

# API Gateway WebSocket messages are capped at 128 KiB.
MAX_MESSAGE_BYTES = 128 * 1024


class ApiGatewayNotifier:
    def __init__(self, client: Any) -> None:
        self._client = client

    async def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        data = json.dumps(message, separators=(",", ":"), default=str).encode()
        if len(data) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"WebSocket message exceeds {MAX_MESSAGE_BYTES} bytes")
        try:
            await asyncio.to_thread(self._client.post_to_connection, ConnectionId=connection_id, Data=data)
        except ClientError as e:
            if error_code(e) == "GoneException" or http_status(e) == 410:
                return False  # the client disconnected; the caller forgets the connection
            raise translate(e, "notifications") from e
        except BotoCoreError as e:
            raise translate(e, "notifications") from e
        return True
