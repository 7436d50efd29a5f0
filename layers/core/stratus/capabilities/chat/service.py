"""Chat on the worker's language model: resolve the model a client names (aliases, built-in, downloaded
or fine-tuned), count the query, stream the reply, and keep seed 004's history.

The interface other capabilities build on (seed 003's chats and data assistant):

    stream(principal, messages, model=None, temperature=0.7, max_tokens=256, stop=None, *, top_p, seed)
        -> async iterator of ChatStart (first, once), ChatDelta (text as generated), ChatDone (last)
    complete(... same ...) -> ChatDone

Every check (the model's name, the messages, the quota, the worker accepting the request) happens
before ChatStart is yielded, so a caller that awaits the first event gets a DomainError or a stream
that has begun. `messages` are [{"role": "system"|"user"|"assistant", "content": str}], oldest first;
when they do not fit the model's context with `max_tokens`, the oldest (after any system message) are
dropped and `dropped_messages` says how many.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stratus.capabilities.chat import spec
from stratus.capabilities.chat.events import ChatDelta, ChatDone, ChatEvent, ChatStart, Usage, first_event
from stratus.capabilities.identity.principal import Principal
from stratus.errors import DependencyFailed, DomainError, NotFound, ValidationFailed
from stratus.ml import catalogue
from stratus.ports.chat import ChatStreamer
from stratus.ports.inference import InferenceRequest, worker_error
from stratus.schemas.common import utcnow

if TYPE_CHECKING:
    from stratus.capabilities.chat.repository import ChatHistoryRepository
    from stratus.capabilities.nlp.service import TaskService
    from stratus.db.repositories.models import ModelRepository
    from stratus.services.quota import QuotaService


@dataclass(frozen=True)
class ServedModel:
    name: str  # what the worker serves and what answered
    requested: str | None
    source: dict[str, Any] | None = None  # a downloaded or fine-tuned model's files


@dataclass
class ChatPolicy:
    aliases: Mapping[str, str] = field(default_factory=dict)  # client name -> served model name
    default_model: str | None = None  # None: the first built-in model that generates
    embedding_model: str | None = None  # None: the first built-in embeddings model


def chat_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def normalise_stop(stop: str | Sequence[str] | None) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else list(stop)
    if len(stops) > spec.MAX_STOP:
        raise ValidationFailed(
            f"stop: at most {spec.MAX_STOP} sequences",
            details=[{"field": "stop", "message": f"at most {spec.MAX_STOP} sequences"}],
        )
    for s in stops:
        if not isinstance(s, str) or not s or len(s) > spec.MAX_STOP_CHARS:
            raise ValidationFailed(
                "stop: each sequence must be 1 to 100 characters",
                details=[{"field": "stop", "message": "each sequence must be 1 to 100 characters"}],
            )
    return stops


def check_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The messages as the worker takes them; ValidationFailed naming the first bad field."""
    if not messages:
        raise ValidationFailed(
            "messages must not be empty", details=[{"field": "messages", "message": "must not be empty"}]
        )
    if len(messages) > spec.MAX_MESSAGES:
        raise ValidationFailed(
            f"at most {spec.MAX_MESSAGES} messages",
            details=[{"field": "messages", "message": f"at most {spec.MAX_MESSAGES} messages"}],
        )
    clean = []
    for i, message in enumerate(messages):
        role, content = message.get("role"), message.get("content")
        if role not in spec.ROLES:
            raise ValidationFailed(
                f"messages[{i}].role must be one of {', '.join(spec.ROLES)}",
                details=[{"field": f"messages.{i}.role", "message": f"one of {', '.join(spec.ROLES)}"}],
            )
        if not isinstance(content, str) or (role == "user" and not content.strip()):
            raise ValidationFailed(
                f"messages[{i}].content must not be empty",
                details=[{"field": f"messages.{i}.content", "message": "must not be empty"}],
            )
        if len(content) > spec.MAX_MESSAGE_CHARS:
            raise ValidationFailed(
                f"messages[{i}].content is too long",
                details=[{"field": f"messages.{i}.content", "message": "too long"}],
            )
        clean.append({"role": str(role), "content": content})
    if clean[-1]["role"] == "assistant":
        raise ValidationFailed(
            "the last message must be the user's (or the system's)",
            details=[{"field": f"messages.{len(clean) - 1}.role", "message": "must not be assistant"}],
        )
    return clean


class ChatService:
    def __init__(
        self,
        tasks: TaskService,
        streamer: ChatStreamer,
        quota: QuotaService,
        history: ChatHistoryRepository,
        models: ModelRepository | None = None,
        policy: ChatPolicy | None = None,
    ) -> None:
        self._tasks = tasks
        self._streamer = streamer
        self._quota = quota
        self._history = history
        self._models = models
        self.policy = policy or ChatPolicy()

    # ------------------------------------------------------------------------------------ models

    def default_model(self) -> str:
        if self.policy.default_model:
            return self.policy.default_model
        builtin = catalogue.for_task(spec.MODEL_TASK)
        if not builtin:
            raise DependencyFailed("No language model is served", code="NO_CHAT_MODEL")
        return builtin[0].name

    def embedding_model(self) -> str:
        if self.policy.embedding_model:
            return self.policy.embedding_model
        return catalogue.for_task("embeddings")[0].name

    def embedding_models(self) -> list[str]:
        return _embedding_names()

    async def available(self, principal: Principal) -> list[str]:
        """Every name the caller may send as a chat model: aliases, built-in, downloaded, fine-tuned."""
        names = list(self.policy.aliases)
        names += [m.name for m in catalogue.for_task(spec.MODEL_TASK)]
        if self._models is not None:
            from stratus.capabilities.finetune import spec as finetune

            names += await self._models.names(principal.user_id, source="hub", task=spec.MODEL_TASK)
            names += await self._models.names(
                principal.user_id, source=finetune.FINETUNED, task=spec.MODEL_TASK
            )
        return list(dict.fromkeys(names))

    async def resolve(self, principal: Principal, model: str | None) -> ServedModel:
        """The served model for a client's name: an alias, a built-in, downloaded or fine-tuned causal
        LM. An unknown name is a 404 listing the names it could have been."""
        if model is None:
            return ServedModel(self.default_model(), None)
        target = self.policy.aliases.get(model) or self.policy.aliases.get(model.lower()) or model
        try:
            name, source = await self._tasks.resolve(principal.user_id, spec.MODEL_TASK, target)
        except NotFound:
            available = await self.available(principal)
            raise NotFound(
                f"Model '{model}' is not available; available: {', '.join(available)}",
                code="MODEL_NOT_FOUND",
                details={"available": available},
            ) from None
        return ServedModel(name, model, source)

    # ------------------------------------------------------------------------------------ chat

    async def stream(
        self,
        principal: Principal,
        messages: Sequence[Mapping[str, Any]],
        model: str | None = None,
        temperature: float = spec.TEMPERATURE.default,
        max_tokens: int = spec.MAX_TOKENS.default,
        stop: str | Sequence[str] | None = None,
        *,
        top_p: float = spec.TOP_P.default,
        seed: int | None = None,
    ) -> AsyncGenerator[ChatEvent, None]:
        """ChatStart, then ChatDelta per piece of text as the model generates it, then ChatDone."""
        clean = check_messages(messages)
        stops = normalise_stop(stop)
        if not spec.MAX_TOKENS.ge <= max_tokens <= spec.MAX_TOKENS.le:
            raise ValidationFailed(
                f"max_tokens must be {spec.MAX_TOKENS.ge} to {spec.MAX_TOKENS.le}",
                details=[{"field": "max_tokens", "message": "out of range"}],
            )
        if not spec.TEMPERATURE.ge <= temperature <= spec.TEMPERATURE.le:
            raise ValidationFailed(
                f"temperature must be {spec.TEMPERATURE.ge} to {spec.TEMPERATURE.le}",
                details=[{"field": "temperature", "message": "out of range"}],
            )
        served = await self.resolve(principal, model)
        await self._quota.consume_query(principal.user_id)
        request = InferenceRequest(
            task=spec.TASK,
            model=served.name,
            inputs=[{"messages": clean, "max_tokens": max_tokens, "temperature": temperature, "stop": stops}],
            options={"top_p": top_p, "seed": seed} if seed is not None else {"top_p": top_p},
            source=served.source,
        )
        ident = chat_id()
        created = utcnow()
        async for event in self._streamer.stream(request):
            kind = event.get("type")
            if kind == "start":
                yield ChatStart(
                    id=ident,
                    model=served.name,
                    requested=served.requested,
                    prompt_tokens=int(event.get("prompt_tokens") or 0),
                    dropped_messages=int(event.get("dropped_messages") or 0),
                    created_at=created,
                )
            elif kind == "delta":
                if event.get("text"):
                    yield ChatDelta(str(event["text"]))
            elif kind == "done":
                usage = event.get("usage") or {}
                reason = event.get("finish_reason")
                yield ChatDone(
                    id=ident,
                    model=served.name,
                    text=str(event.get("text") or ""),
                    finish_reason="length" if reason == "length" else "stop",
                    usage=Usage(
                        int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0)
                    ),
                    dropped_messages=int(event.get("dropped_messages") or 0),
                    created_at=created,
                    requested=served.requested,
                )
                return
            elif kind == "error":
                raise worker_error(int(event.get("status") or 500), event)
        raise DependencyFailed("The model's stream ended early", code="INFERENCE_FAILED")

    async def complete(
        self,
        principal: Principal,
        messages: Sequence[Mapping[str, Any]],
        model: str | None = None,
        temperature: float = spec.TEMPERATURE.default,
        max_tokens: int = spec.MAX_TOKENS.default,
        stop: str | Sequence[str] | None = None,
        *,
        top_p: float = spec.TOP_P.default,
        seed: int | None = None,
    ) -> ChatDone:
        """The whole reply at once (the same stream, gathered)."""
        stream = self.stream(
            principal, messages, model, temperature, max_tokens, stop, top_p=top_p, seed=seed
        )
        try:
            async for event in stream:
                if isinstance(event, ChatDone):
                    return event
        finally:
            await stream.aclose()
        raise DependencyFailed("The model's stream ended early", code="INFERENCE_FAILED")

    # ------------------------------------------------------------------------------------ seed 004

    async def send(
        self,
        principal: Principal,
        message: str,
        model: str | None = None,
        temperature: float = spec.TEMPERATURE.default,
        max_tokens: int = spec.MAX_TOKENS.default,
    ) -> dict[str, Any]:
        """POST /api/chat: one message, answered and kept in the user's history."""
        done = await self.complete(
            principal, [{"role": "user", "content": message}], model, temperature, max_tokens
        )
        return await self.remember(principal, message, done)

    async def remember(self, principal: Principal, message: str, done: ChatDone) -> dict[str, Any]:
        """Keep an exchange in seed 004's history; returns its record."""
        return await self._history.insert(
            {
                "user_id": principal.user_id,
                "chat_id": done.id,
                "message": message,
                "response": done.text,
                "model": done.model,
                "requested_model": done.requested,
                "usage": done.usage.as_dict(),
                "finish_reason": done.finish_reason,
                "dropped_messages": done.dropped_messages,
                "created_at": done.created_at,
            }
        )

    async def history(self, principal: Principal, *, limit: int, offset: int) -> dict[str, Any]:
        items, total = await self._history.page(principal.user_id, limit=limit, offset=offset)
        return {"messages": items, "total": total, "limit": limit, "offset": offset}

    # ------------------------------------------------------------------------------------ embeddings

    async def embeddings(
        self, principal: Principal, texts: list[str], model: str | None, *, wait_s: float
    ) -> tuple[str, list[list[float]], int]:
        """/v1/embeddings: the served model, one vector per text, and the texts' token estimate."""
        target = self.embedding_model() if model is None else self.policy.aliases.get(model, model)
        try:
            record = await self._tasks.run(
                principal.user_id, "embeddings", target, [{"text": t} for t in texts], {}, wait_s=wait_s,
                single=False,
            )  # fmt: skip
        except NotFound as e:
            available = [n for n, t in self.policy.aliases.items() if t in _embedding_names()]
            available += _embedding_names()
            raise NotFound(
                f"Model '{model}' is not available; available: {', '.join(available)}",
                code="MODEL_NOT_FOUND",
                details={"available": available},
            ) from e
        if record.get("status") != "completed":
            raise DependencyFailed("The embeddings did not finish in time; retry", code="INFERENCE_TIMEOUT")
        result = record.get("result") or {}
        return str(record["model"]), list(result.get("embeddings") or []), sum(len(t.split()) for t in texts)


def _embedding_names() -> list[str]:
    return [m.name for m in catalogue.for_task("embeddings")]


__all__ = [
    "ChatDelta",
    "ChatDone",
    "ChatEvent",
    "ChatPolicy",
    "ChatService",
    "ChatStart",
    "DomainError",
    "Usage",
    "first_event",
]
