"""The local WebSocket endpoint: the same protocol API Gateway's WebSocket API speaks in AWS.

Clients authenticate with the tokens the HTTP API issues: `?token=<jwt or sk- key>` or the
`Sec-WebSocket-Protocol` header (`bearer, <token>`), since browsers cannot set Authorization on a
WebSocket. Unauthenticated connections are refused before the handshake completes.
"""

from __future__ import annotations

import contextlib
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from stratus.adapters.local.ws_hub import LocalWebSocketHub
from stratus.errors import DomainError
from stratus.services.auth import AuthService, Principal

BEARER_SUBPROTOCOL = "bearer"


def _credential(ws: WebSocket) -> tuple[str | None, str | None]:
    """The token, and the subprotocol to echo back (a browser drops the connection if it is missing)."""
    token = ws.query_params.get("token")
    if token:
        return token, None
    offered = [p.strip() for p in ws.headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(offered) >= 2 and offered[0].lower() == BEARER_SUBPROTOCOL:
        return offered[1], offered[0]
    return None, None


async def authenticate(ws: WebSocket, auth: AuthService) -> tuple[Principal, str | None] | None:
    token, subprotocol = _credential(ws)
    if token is None:
        return None
    try:
        return await auth.authenticate(token), subprotocol
    except DomainError:
        return None


def build_router(hub: LocalWebSocketHub, auth: AuthService) -> APIRouter:
    router = APIRouter()

    @router.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        authenticated = await authenticate(ws, auth)
        if authenticated is None:
            # Closing before accept answers the handshake with HTTP 403.
            await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="Authentication required")
            return
        principal, subprotocol = authenticated
        await ws.accept(subprotocol=subprotocol)
        connection_id = uuid.uuid4().hex
        hub.register(connection_id, ws.send_json)
        await ws.send_json(
            {"type": "connected", "data": {"connection_id": connection_id, "user_id": str(principal.user_id)}}
        )
        try:
            while True:
                message: Any = await ws.receive_json()
                action = message.get("action") if isinstance(message, dict) else None
                if action == "ping":
                    await ws.send_json({"type": "pong", "data": {}})
                else:
                    await ws.send_json({"type": "error", "data": {"message": f"unknown action: {action!r}"}})
        except (WebSocketDisconnect, ValueError):
            pass
        finally:
            hub.unregister(connection_id)
            with contextlib.suppress(RuntimeError):
                await ws.close()

    return router
