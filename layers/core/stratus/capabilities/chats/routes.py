"""Seed 003's chats (/api/chats) and messages (/api/messages). Posting a `user` message gets an
assistant reply in the background: it appears in GET /api/messages/chat/{chat_id} when done, and its
pieces are pushed to WebSocket connections that follow the chat ({"action": "subscribe", "chat_id"})."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from stratus.api.deps import Chats
from stratus.api.pagination import Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.chats.schemas import (
    ChatCreate,
    ChatPublic,
    ChatUpdate,
    MessageCreate,
    MessagePublic,
)
from stratus.db.ids import ObjectIdStr, oid

chats = APIRouter(prefix="/api/chats", tags=["chats"], route_class=StratusRoute, dependencies=[RateLimit])
messages = APIRouter(
    prefix="/api/messages", tags=["chats"], route_class=StratusRoute, dependencies=[RateLimit]
)


@chats.post("", status_code=status.HTTP_201_CREATED, response_model=ChatPublic)
async def create_chat(body: ChatCreate, principal: CurrentUser, service: Chats) -> dict[str, Any]:
    """A chat, optionally on one of your models and one of your datasets (404 if not yours; 409 if the
    dataset is not `ready`)."""
    return await service.create(principal.user_id, body)


@chats.get("", response_model=list[ChatPublic])
async def list_chats(
    principal: CurrentUser, service: Chats, page: Pagination, response: Response
) -> list[dict[str, Any]]:
    """Most recently updated first; the total is in `X-Total-Count`."""
    items, total = await service.list_owned(principal.user_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return items


@chats.get("/{chat_id}", response_model=ChatPublic)
async def get_chat(chat_id: ObjectIdStr, principal: CurrentUser, service: Chats) -> dict[str, Any]:
    return await service.get(principal.user_id, oid(chat_id, what="Chat"))


@chats.patch("/{chat_id}", response_model=ChatPublic)
async def update_chat(
    chat_id: ObjectIdStr, body: ChatUpdate, principal: CurrentUser, service: Chats
) -> dict[str, Any]:
    """Partial update; 400 "No fields to update" for an empty body."""
    return await service.update(principal.user_id, oid(chat_id, what="Chat"), body)


@chats.delete("/{chat_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_chat(chat_id: ObjectIdStr, principal: CurrentUser, service: Chats) -> Response:
    """The chat and all its messages."""
    await service.delete(principal.user_id, oid(chat_id, what="Chat"))
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@messages.post("", status_code=status.HTTP_201_CREATED, response_model=MessagePublic)
async def create_message(body: MessageCreate, principal: CurrentUser, service: Chats) -> dict[str, Any]:
    """Add a message to one of your chats. A `user` message counts as a query and is answered: the
    assistant's message follows in the chat's list (and on the WebSocket) when it is ready."""
    return await service.post(principal.user_id, body)


@messages.get("/chat/{chat_id}", response_model=list[MessagePublic])
async def list_messages(
    chat_id: ObjectIdStr, principal: CurrentUser, service: Chats, page: Pagination, response: Response
) -> list[dict[str, Any]]:
    """Oldest first; the total is in `X-Total-Count`."""
    items, total = await service.messages(
        principal.user_id, oid(chat_id, what="Chat"), limit=page.limit, offset=page.offset
    )
    set_total(response, total)
    return items


@messages.get("/{message_id}", response_model=MessagePublic)
async def get_message(message_id: ObjectIdStr, principal: CurrentUser, service: Chats) -> dict[str, Any]:
    return await service.message(principal.user_id, oid(message_id, what="Message"))


def routers() -> list[APIRouter]:
    return [chats, messages]
