"""Seed 004's chat over the WebSocket: `{"type": "chat", "data": {message, model?, temperature?,
max_tokens?}}` in; `{"type": "chat_token", "data": {id, token}}` per piece of text as the model
generates it; then `{"type": "chat_response", "data": {id, message, model, usage, finish_reason}}`
(or `{"type": "error", ...}`). The exchange is kept in the history like POST /api/chat's.

Transport-neutral: the local WebSocket endpoint sends on the socket; the API Gateway WebSocket Lambda
sends each message with post_to_connection (the Notifier).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from stratus.capabilities.chat.events import ChatDelta, ChatDone, first_event
from stratus.capabilities.chat.schemas import ChatRequest
from stratus.errors import DomainError

if TYPE_CHECKING:
    from stratus.capabilities.chat.service import ChatService
    from stratus.capabilities.identity.principal import Principal

MESSAGE_TYPE = "chat"
Send = Callable[[dict[str, Any]], Awaitable[Any]]


def is_chat(message: Any) -> bool:
    return isinstance(message, dict) and message.get("type") == MESSAGE_TYPE


def _error(message: str, **extra: Any) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message, **extra}}


async def answer(chat: ChatService, principal: Principal, data: Any, send: Send) -> None:
    """Stream one chat message's reply to `send`."""
    try:
        body = ChatRequest.model_validate(data if isinstance(data, dict) else {})
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "data"
        await send(_error(f"{field}: {first['msg']}", field=field, code="VALIDATION_ERROR"))
        return
    stream = chat.stream(
        principal, [{"role": "user", "content": body.message}], body.model, body.temperature, body.max_tokens
    )
    try:
        start = await first_event(stream)
        async for event in stream:
            if isinstance(event, ChatDelta):
                await send({"type": "chat_token", "data": {"id": start.id, "token": event.text}})
            elif isinstance(event, ChatDone):
                await chat.remember(principal, body.message, event)
                await send(
                    {
                        "type": "chat_response",
                        "data": {
                            "id": event.id,
                            "message": event.text,
                            "model": event.model,
                            "usage": event.usage.as_dict(),
                            "finish_reason": event.finish_reason,
                            "dropped_messages": event.dropped_messages,
                        },
                    }
                )
    except DomainError as e:
        await send(_error(e.message, code=e.code, details=e.details))
    finally:
        await stream.aclose()
