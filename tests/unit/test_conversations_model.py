"""The chats capability's model port: pieces, and the streaming
adapter over the worker's chat events (deltas joined, errors raised as the worker's domain errors)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from bson import ObjectId

from stratus.capabilities.chats.model import StreamingReplyModel, pieces
from stratus.errors import DependencyFailed, NotFound
from stratus.ports.inference import InferenceRequest

USER = ObjectId()


def test_pieces_keep_every_character() -> None:
    text = "The average sales in Q3 2025 is 3,000.\n  Done"
    assert "".join(pieces(text)) == text
    assert pieces("a b") == ["a ", "b"]


async def _collect(stream: AsyncIterator[str]) -> list[str]:
    return [piece async for piece in stream]


class Served:
    def __init__(self, name: str) -> None:
        self.name, self.source = name, None


class Chat:
    """ChatService.resolve: knows one model name; anything else is NotFound."""

    def __init__(self) -> None:
        self.asked: list[str | None] = []

    async def resolve(self, principal: Any, model: str | None) -> Served:
        self.asked.append(model)
        if model not in (None, "known"):
            raise NotFound("no such model")
        return Served(model or "default-model")


class Streamer:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.requests: list[InferenceRequest] = []

    async def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(request)
        for event in self.events:
            yield event


async def test_streaming_adapter_yields_the_deltas_and_falls_back_to_the_default_model() -> None:
    streamer = Streamer(
        [
            {"type": "start", "model": "m"},
            {"type": "delta", "text": "Hel"},
            {"type": "delta", "text": "lo"},
            {"type": "done", "text": "Hello"},
        ]
    )
    chat = Chat()
    model = StreamingReplyModel(chat, streamer)  # type: ignore[arg-type]
    messages = [{"role": "system", "content": "s"}, {"role": "user", "content": "Hi"}]
    got = await _collect(model.stream(USER, "gone", messages, max_tokens=16, temperature=0.3))
    assert got == ["Hel", "lo"]
    assert chat.asked == ["gone", None]
    request = streamer.requests[0]
    assert request.task == "chat" and request.model == "default-model"
    assert request.inputs[0]["messages"] == messages and request.inputs[0]["max_tokens"] == 16


async def test_streaming_adapter_raises_the_workers_error() -> None:
    streamer = Streamer([{"type": "start"}, {"type": "error", "status": 503, "message": "busy"}])
    model = StreamingReplyModel(Chat(), streamer)  # type: ignore[arg-type]
    with pytest.raises(DependencyFailed, match="busy"):
        await _collect(
            model.stream(USER, None, [{"role": "user", "content": "Hi"}], max_tokens=8, temperature=0)
        )
