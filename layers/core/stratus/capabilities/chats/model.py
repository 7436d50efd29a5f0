"""The language model a chat's replies come from: a small port, so the service never knows whether the
tokens come from a streaming chat endpoint or from the generation task of the inference worker.

`ReplyModel.stream` yields the reply's text in pieces as they are generated. The model always runs on
the inference worker (the local inference server, a SageMaker endpoint in AWS), never where this runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

from bson import ObjectId

from stratus.errors import DependencyFailed
from stratus.ports.inference import InferenceBackend, InferencePending, InferenceRequest

# (user, model name or None for the default) -> (served model name, downloaded model's source or None)
Resolve = Callable[[ObjectId, str, str | None], Awaitable[tuple[str, dict[str, Any] | None]]]


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


def flatten(messages: Sequence[dict[str, str]]) -> str:
    """A conversation as one prompt, for a model call that takes a single user turn."""
    system = [m["content"] for m in messages if m["role"] == "system"]
    turns = [m for m in messages if m["role"] != "system"]
    lines = [*system]
    if len(turns) > 1:
        lines.append("The conversation so far:")
        lines.extend(f"{m['role'].capitalize()}: {m['content']}" for m in turns[:-1])
        lines.append("Reply to the user's last message.")
    if turns:
        lines.append(turns[-1]["content"])
    return "\n".join(lines)


class GenerationReplyModel:
    """The inference worker's `generation` task (one call, the whole reply), handed on in word pieces.
    Used until a streaming chat call is wired in (composition: one line)."""

    def __init__(self, backend: InferenceBackend, resolve: Resolve, *, wait_s: float) -> None:
        self._backend = backend
        self._resolve = resolve
        self._wait_s = wait_s

    async def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        name, source = await self._resolve(user_id, "generation", model)
        request = InferenceRequest(
            task="generation",
            model=name,
            inputs=[{"prompt": flatten(messages), "max_tokens": max_tokens, "temperature": temperature}],
            source=source,
        )
        try:
            result = await self._backend.invoke(request, wait_s=self._wait_s)
        except InferencePending as e:
            raise DependencyFailed("The language model did not answer in time", code="MODEL_TIMEOUT") from e
        text = str((result.outputs[0] if result.outputs else {}).get("text") or "")
        for piece in pieces(text):
            yield piece
