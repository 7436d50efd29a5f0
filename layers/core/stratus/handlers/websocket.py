"""The API Gateway WebSocket Lambda: $connect authenticates, $disconnect forgets, $default handles actions.

API Gateway holds the sockets; this function only sees one event per connect, message and disconnect,
in whichever container is free, so connection state lives in the database (LiveUpdates). Replies go back
through the Management API (the Notifier), because $default has no route response configured.

`?follow={job_id}` subscribes on connect, like the local `/ws?follow=`. Authentication matches the local
endpoint: `?token=` or `Sec-WebSocket-Protocol: bearer, <token>`. When the
subprotocol was used, $connect must echo `bearer` or browsers drop the connection. A model-bound API key (or
a session opened with one) is refused with 403: it may call its model, not follow jobs.
"""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Callable, Coroutine, Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from stratus.capabilities.identity.service import AuthService
from stratus.errors import DomainError
from stratus.services.live import LiveUpdates, error_message

if TYPE_CHECKING:
    from stratus.capabilities.chat.service import ChatService

T = TypeVar("T")
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]
BEARER_SUBPROTOCOL = "bearer"

log = logging.getLogger(__name__)


class Runner(Protocol):
    """Runs one coroutine to completion on the process's long-lived event loop (loop.run_until_complete)."""

    def __call__(self, coro: Coroutine[Any, Any, T], /) -> T: ...


def _credential(event: Mapping[str, Any]) -> tuple[str | None, str | None]:
    """The token, and the subprotocol to echo back."""
    query = event.get("queryStringParameters") or {}
    if query.get("token"):
        return str(query["token"]), None
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    offered = [p.strip() for p in headers.get("sec-websocket-protocol", "").split(",") if p.strip()]
    if len(offered) >= 2 and offered[0].lower() == BEARER_SUBPROTOCOL:
        return offered[1], offered[0]
    return None, None


def _body(event: Mapping[str, Any]) -> bytes:
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)  # binary frames; binascii.Error is a ValueError
    return body.encode() if isinstance(body, str) else bytes(body)


def build_websocket_handler(
    auth: AuthService, live: LiveUpdates, run: Runner, *, chat: Callable[[], ChatService] | None = None
) -> LambdaHandler:
    """`chat` builds the chat service on the first `{"type": "chat"}` message (seed 004): its reply is
    pushed token by token with post_to_connection while this invocation runs."""

    async def on_connect(connection_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        token, subprotocol = _credential(event)
        if token is None:
            return {"statusCode": 401}
        try:
            principal = await auth.authenticate(token)
        except DomainError:
            return {"statusCode": 401}
        if principal.is_model_scoped:
            # A model-bound API key (or a session opened with one) may call its model, not follow jobs.
            return {"statusCode": 403}
        await live.connect(connection_id, principal.user_id)
        follow = (event.get("queryStringParameters") or {}).get("follow")
        if follow:
            # `?follow={id}` (the URL responses name) subscribes on connect. No reply can be sent before
            # the connection opens, so a job that is not the user's refuses the connection instead.
            try:
                await live.subscribe(connection_id, principal.user_id, str(follow))
            except DomainError:
                await live.disconnect(connection_id)
                return {"statusCode": 404}
        if subprotocol is None:
            return {"statusCode": 200}
        return {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": subprotocol}}

    async def on_message(connection_id: str, event: Mapping[str, Any]) -> dict[str, Any]:
        user_id = await live.user_of(connection_id)
        if user_id is None:
            reply = error_message("Connection not registered; reconnect")
        else:
            try:
                message = json.loads(_body(event))
            except ValueError:
                reply = error_message("messages must be JSON")
            else:
                if chat is not None and isinstance(message, dict) and message.get("type") == "chat":
                    from stratus.capabilities.chat import socket as chat_socket
                    from stratus.capabilities.identity.principal import Principal

                    async def push(reply: dict[str, Any]) -> bool:
                        return await live.send(connection_id, reply)

                    principal = Principal(user_id=user_id, via="token")
                    await chat_socket.answer(chat(), principal, message.get("data"), push)
                    return {"statusCode": 200}
                reply = await live.respond(connection_id, user_id, message)
        await live.send(connection_id, reply)
        return {"statusCode": 200}

    async def on_disconnect(connection_id: str) -> dict[str, Any]:
        await live.disconnect(connection_id)
        return {"statusCode": 200}

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        request = event.get("requestContext") or {}
        route, connection_id = request.get("routeKey"), request.get("connectionId")
        if not isinstance(connection_id, str):
            log.error("WebSocket event without a connectionId (route %r)", route)
            return {"statusCode": 400}
        if route == "$connect":
            return run(on_connect(connection_id, event))
        if route == "$disconnect":
            return run(on_disconnect(connection_id))
        # $default, or an action route if the API selects routes on $request.body.action.
        return run(on_message(connection_id, event))

    return handler
