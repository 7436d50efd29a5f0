"""The language model a chat's replies come from: a small port over the worker's streamed chat task,
so the service can be tested with a stand-in model.

`ReplyModel.stream` yields the reply's text in pieces as they are generated. The model always runs on
the inference worker (the local inference server, a SageMaker endpoint in AWS), never where this runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from bson import ObjectId

from stratus.errors import DependencyFailed, NotFound
from stratus.ports.inference import InferenceRequest, worker_error

if TYPE_CHECKING:
    from stratus.capabilities.chat.service import ChatService
    from stratus.ports.chat import ChatStreamer


class ReplyModel(Protocol):
    def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        """The assistant's reply to `messages` ({role, content}, oldest first), in pieces. Raises
        DomainErrors (NotFound for an unknown model, ServiceUnavailable, DependencyFailed)."""
        ...


_PIECES = re.compile(r"\S+\s*|\s+")


def pieces(text: str) -> list[str]:
    """A finished text as the pieces a token stream would have carried (words with their spacing)."""
    return _PIECES.findall(text)


class StreamingReplyModel:
    """The chat task of the inference worker, streamed (seed 004's chat service resolves the model:
    aliases, built-in, downloaded or fine-tuned). The query was counted when the message was posted, so
    this calls the stream port directly rather than ChatService.stream (which counts one more)."""

    def __init__(self, chat: ChatService, streamer: ChatStreamer) -> None:
        self._chat = chat
        self._streamer = streamer

    async def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        from stratus.capabilities.chat import spec
        from stratus.capabilities.chat.service import check_messages
        from stratus.capabilities.identity.principal import Principal

        principal = Principal(user_id=user_id, via="token")
        try:
            served = await self._chat.resolve(principal, model)
        except NotFound:
            # The chat's model is gone (deleted, or a name no alias covers): the default model answers.
            served = await self._chat.resolve(principal, None)
        request = InferenceRequest(
            task=spec.TASK,
            model=served.name,
            inputs=[
                {
                    "messages": check_messages(messages),
                    "max_tokens": max_tokens,
                    "temperature": temperature,
                    "stop": [],
                }
            ],
            options={"top_p": spec.TOP_P.default},
            source=served.source,
        )
        async for event in self._streamer.stream(request):
            kind = event.get("type")
            if kind == "delta" and event.get("text"):
                yield str(event["text"])
            elif kind == "done":
                return
            elif kind == "error":
                raise worker_error(int(event.get("status") or 500), event)
        raise DependencyFailed("The model's stream ended early", code="INFERENCE_FAILED")
