"""The local WebSocket endpoint: the same protocol API Gateway's WebSocket API speaks in AWS.

Clients authenticate with the tokens the HTTP API issues: `?token=<jwt or sk- key>` or the
`Sec-WebSocket-Protocol` header (`bearer, <token>`), since browsers cannot set Authorization on a
WebSocket. Unauthenticated connections, and model-bound API keys (which may call only their model), are
refused before the handshake completes.

Clients follow jobs with {"action": "subscribe", "job_id": ...} (and "unsubscribe", "ping"); the
per-resource paths of seed 002 (`/ws/tasks/{id}`, `/ws/download/{id}`) and `/ws?follow={id}` subscribe
on connect.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from stratus.adapters.local.ws_hub import LocalWebSocketHub
from stratus.capabilities.identity.principal import Principal
from stratus.capabilities.identity.service import AuthService
from stratus.errors import DomainError
from stratus.services.live import LiveUpdates, error_message

if TYPE_CHECKING:
    from stratus.capabilities.chat.service import ChatService

BEARER_SUBPROTOCOL = "bearer"
CLOSE_NOT_FOUND = 4404  # application close code: the followed resource does not exist (or is not yours)

log = logging.getLogger(__name__)


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
    """The caller, or None to refuse the connection: no valid credential, or a model-bound API key (or a
    session opened with one), which may call its model and nothing else, so may not follow jobs."""
    token, subprotocol = _credential(ws)
    if token is None:
        return None
    try:
        principal = await auth.authenticate(token)
    except DomainError:
        return None
    if principal.is_model_scoped:
        return None
    return principal, subprotocol


def build_router(
    hub: LocalWebSocketHub,
    auth: AuthService,
    live: LiveUpdates,
    *,
    chat: Callable[[], ChatService] | None = None,
) -> APIRouter:
    """`chat` builds the chat service on the first `{"type": "chat"}` message (seed 004), which is
    answered with tokens as they are generated (stratus.capabilities.chat.socket)."""
    router = APIRouter()

    async def respond(connection_id: str, principal: Principal, message: Any) -> dict[str, Any]:
        return await live.respond(connection_id, principal.user_id, message)

    async def serve(ws: WebSocket, follow: str | None = None) -> None:
        authenticated = await authenticate(ws, auth)
        if authenticated is None:
            # Closing before accept answers the handshake with HTTP 403.
            await ws.close(code=status.WS_1008_POLICY_VIOLATION, reason="Authentication required")
            return
        principal, subprotocol = authenticated
        await ws.accept(subprotocol=subprotocol)
        connection_id = uuid.uuid4().hex
        await live.connect(connection_id, principal.user_id)
        hub.register(connection_id, ws.send_json)
        # Replies go through the hub too: its per-connection lock keeps them whole amid pushed updates.
        send = functools.partial(hub.send, connection_id)
        try:
            await send(
                {
                    "type": "connected",
                    "data": {"connection_id": connection_id, "user_id": str(principal.user_id)},
                }
            )
            if follow is not None:
                reply = await respond(connection_id, principal, {"action": "subscribe", "job_id": follow})
                await send(reply)
                if reply["type"] == "error":
                    await ws.close(code=CLOSE_NOT_FOUND, reason=reply["data"]["message"])
                    return
            while (event := await ws.receive())["type"] != "websocket.disconnect":
                try:
                    message: Any = json.loads(event.get("text") or event.get("bytes") or b"")
                except ValueError:
                    await send(error_message("messages must be JSON"))
                    continue
                if chat is not None and isinstance(message, dict) and message.get("type") == "chat":
                    from stratus.capabilities.chat import socket as chat_socket

                    await chat_socket.answer(chat(), principal, message.get("data"), send)
                    continue
                await send(await respond(connection_id, principal, message))
        except WebSocketDisconnect:
            pass
        finally:
            hub.unregister(connection_id)
            try:
                await live.disconnect(connection_id)
            except DomainError:
                log.warning("could not forget WebSocket connection %s (its record expires)", connection_id)
            with contextlib.suppress(RuntimeError):
                await ws.close()

    @router.websocket("/ws")
    async def websocket(ws: WebSocket) -> None:
        # `?follow={id}` subscribes on connect, as on the API Gateway WebSocket (responses name this URL).
        await serve(ws, follow=ws.query_params.get("follow") or None)

    @router.websocket("/ws/training")
    async def training(ws: WebSocket) -> None:
        """Seed 002's training channel: subscribe to jobs with {"action": "subscribe", "job_id"}."""
        await serve(ws)

    @router.websocket("/ws/tasks/{task_id}")
    async def task(ws: WebSocket, task_id: str) -> None:
        await serve(ws, follow=task_id)

    @router.websocket("/ws/download/{download_id}")
    async def download(ws: WebSocket, download_id: str) -> None:
        await serve(ws, follow=download_id)

    @router.websocket("/ws/chats/{chat_id}")
    async def chat_replies(ws: WebSocket, chat_id: str) -> None:
        """A chat's replies as they are generated (chat_token, then chat_message)."""
        await serve(ws, follow=chat_id)

    return router
