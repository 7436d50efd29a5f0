"""What a chat stream yields (ChatService.stream): light, so the routes and WebSocket handlers that read
the events import no service."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Literal, NamedTuple

from stratus.errors import DependencyFailed

FinishReason = Literal["stop", "length"]


class Usage(NamedTuple):
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


class ChatStart(NamedTuple):
    """The request was accepted: `model` is the served model that answers (aliases resolved)."""

    id: str
    model: str
    requested: str | None  # the name the client sent (None: the default model)
    prompt_tokens: int
    dropped_messages: int
    created_at: datetime


class ChatDelta(NamedTuple):
    text: str


class ChatDone(NamedTuple):
    id: str
    model: str
    text: str
    finish_reason: FinishReason
    usage: Usage
    dropped_messages: int
    created_at: datetime
    requested: str | None = None


ChatEvent = ChatStart | ChatDelta | ChatDone


async def first_event(stream: AsyncIterator[ChatEvent]) -> ChatStart:
    """Await a stream's ChatStart (raising its DomainError, if any, before anything is sent)."""
    event = await anext(stream)
    if not isinstance(event, ChatStart):
        raise DependencyFailed("The model's stream began without a start", code="INFERENCE_FAILED")
    return event
