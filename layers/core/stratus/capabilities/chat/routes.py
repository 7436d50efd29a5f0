"""Seed 004's /api/chat and /api/chat/history, and the OpenAI-compatible /v1 API (chat completions,
streamed as server-sent events; models; embeddings), whose errors take OpenAI's shape."""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Coroutine
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stratus.api.deps import AppSettings, Chat
from stratus.api.pagination import Offset
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.chat import spec
from stratus.capabilities.chat.events import ChatDelta, ChatDone, ChatEvent, ChatStart, first_event
from stratus.capabilities.chat.schemas import (
    ChatCompletionRequest,
    ChatHistory,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    openai_model,
)
from stratus.errors import (
    DomainError,
    QuotaExceeded,
    RateLimited,
    ServiceUnavailable,
    Unauthenticated,
    ValidationFailed,
)

# ----------------------------------------------------------------------------------------- seed 004

seed = APIRouter(prefix="/api/chat", tags=["chat"], route_class=StratusRoute, dependencies=[RateLimit])


def _reply(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": record["chat_id"],
        "message": record["response"],
        "model": record["model"],
        "usage": record["usage"],
        "created_at": record["created_at"],
        "finish_reason": record.get("finish_reason", "stop"),
        "requested_model": record.get("requested_model"),
        "dropped_messages": record.get("dropped_messages", 0),
    }


@seed.post("", response_model=ChatResponse)
async def send(body: ChatRequest, user: CurrentUser, chat: Chat) -> dict[str, Any]:
    """Send a message to the model; the reply names the model that answered (aliases resolved). The
    exchange is kept in the user's history. Streamed token by token on the WebSocket
    (`{"type": "chat", "data": {...}}`)."""
    return _reply(await chat.send(user, body.message, body.model, body.temperature, body.max_tokens))


@seed.get("/history", response_model=ChatHistory)
async def history(
    user: CurrentUser,
    chat: Chat,
    limit: int = Query(spec.HISTORY_LIMIT.default, ge=spec.HISTORY_LIMIT.ge, le=spec.HISTORY_LIMIT.le),
    offset: Offset = 0,
) -> dict[str, Any]:
    """The user's exchanges, newest first."""
    page = await chat.history(user, limit=limit, offset=offset)
    page["messages"] = [
        {"id": r["chat_id"], "message": r["message"], "response": r["response"], "model": r["model"],
         "created_at": r["created_at"]}
        for r in page["messages"]
    ]  # fmt: skip
    return page


# ----------------------------------------------------------------------------------------- OpenAI

_TYPES = {401: "authentication_error", 403: "permission_error", 404: "invalid_request_error"}


def openai_error(
    status: int, message: str, *, param: str | None = None, code: str | None = None, type_: str | None = None
) -> JSONResponse:
    """OpenAI's error body, {"error": {message, type, param, code}}."""
    kind = type_ or _TYPES.get(status) or ("invalid_request_error" if status < 500 else "server_error")
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else {}
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": param, "code": code}},
        status_code=status,
        headers=headers,
    )


def _param(details: Any) -> str | None:
    if isinstance(details, list) and details and isinstance(details[0], dict):
        return str(details[0].get("field")) if details[0].get("field") else None
    return None


def domain_to_openai(error: DomainError) -> JSONResponse:
    from stratus.api.errors import status_for

    status = status_for(error)
    if isinstance(error, QuotaExceeded):  # OpenAI answers a spent quota with 429 insufficient_quota
        return openai_error(429, error.message, code="insufficient_quota", type_="insufficient_quota")
    if isinstance(error, RateLimited):
        response = openai_error(429, error.message, code="rate_limit_exceeded", type_="rate_limit_error")
        response.headers["Retry-After"] = str(error.retry_after)
        return response
    if status == 422:  # OpenAI reports invalid parameters as 400
        status = 400
    code = "invalid_api_key" if isinstance(error, Unauthenticated) else error.code.lower()
    response = openai_error(status, error.message, param=_param(error.details), code=code)
    if isinstance(error, ServiceUnavailable):
        response.headers["Retry-After"] = "5"
    return response


def validation_to_openai(error: RequestValidationError) -> JSONResponse:
    first = (error.errors() or [{}])[0]
    loc = [str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path", "header")]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return openai_error(400, "The body is not valid JSON", code="invalid_json")
    message = str(first.get("msg", "Invalid request"))
    if param == "messages" and first.get("type") == "too_short":
        message = "messages must not be empty"
    return openai_error(400, f"{param}: {message}" if param else message, param=param, code="invalid_value")


class OpenAIRoute(StratusRoute):
    """/v1 operations answer every error in OpenAI's shape (authentication, validation, domain errors),
    so OpenAI's client libraries raise their own exception types."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def openai_errors(request: Request) -> Response:
            try:
                return await handler(request)
            except DomainError as e:
                return domain_to_openai(e)
            except RequestValidationError as e:
                return validation_to_openai(e)
            except StarletteHTTPException as e:
                return openai_error(e.status_code, str(e.detail))

        return openai_errors


v1 = APIRouter(prefix="/v1", tags=["openai"], route_class=OpenAIRoute, dependencies=[RateLimit])


def _chunk(start: ChatStart, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": start.id,
        "object": "chat.completion.chunk",
        "created": int(start.created_at.timestamp()),
        "model": start.model,
        "system_fingerprint": None,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }


def _sse(data: Any) -> bytes:
    return f"data: {json.dumps(data)}\n\n".encode()


async def _events(
    start: ChatStart, stream: AsyncGenerator[ChatEvent, None], include_usage: bool
) -> AsyncIterator[bytes]:
    """The OpenAI stream: a role chunk, content chunks, the finish chunk, a usage chunk if asked for,
    then `data: [DONE]`. An error after the stream began is sent as an error event."""
    yield _sse(_chunk(start, {"role": "assistant", "content": ""}, None))
    try:
        async for event in stream:
            if isinstance(event, ChatDelta):
                yield _sse(_chunk(start, {"content": event.text}, None))
            elif isinstance(event, ChatDone):
                yield _sse(_chunk(start, {}, event.finish_reason))
                if include_usage:
                    usage = {**_chunk(start, {}, None), "choices": [], "usage": event.usage.as_dict()}
                    yield _sse(usage)
    except DomainError as e:
        yield _sse(json.loads(bytes(domain_to_openai(e).body)))
    finally:
        await stream.aclose()
    yield b"data: [DONE]\n\n"


def _completion(done: ChatDone) -> dict[str, Any]:
    return {
        "id": done.id,
        "object": "chat.completion",
        "created": int(done.created_at.timestamp()),
        "model": done.model,
        "system_fingerprint": None,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": done.text, "refusal": None},
                "logprobs": None,
                "finish_reason": done.finish_reason,
            }
        ],
        "usage": done.usage.as_dict(),
        # Ours: the name the client sent, and how many of the oldest messages were left out to fit.
        "stratus": {"requested_model": done.requested, "dropped_messages": done.dropped_messages},
    }


@v1.post("/chat/completions", response_model=None)
async def chat_completions(body: ChatCompletionRequest, user: CurrentUser, chat: Chat) -> Any:
    """OpenAI's chat completions: `stream: true` answers server-sent events ending in `data: [DONE]`."""
    temperature = spec.TEMPERATURE.default if body.temperature is None else body.temperature
    top_p = body.top_p or spec.TOP_P.default
    messages = body.chat_messages()
    if not body.stream:
        done = await chat.complete(
            user, messages, body.model, temperature, body.budget(), body.stop, top_p=top_p, seed=body.seed
        )
        return _completion(done)
    stream = chat.stream(
        user, messages, body.model, temperature, body.budget(), body.stop, top_p=top_p, seed=body.seed
    )
    start = await first_event(stream)  # errors (unknown model, quota, worker) answer before streaming
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return StreamingResponse(
        _events(start, stream, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@v1.get("/models")
async def list_models(user: CurrentUser, chat: Chat) -> dict[str, Any]:
    """Every model name a client may send: aliases, served chat models (built-in, downloaded, fine-tuned)
    and embedding models."""
    aliases = chat.policy.aliases
    data = [openai_model(name, "stratus-alias") for name in aliases]
    for name in await chat.available(user):
        if name not in aliases:
            data.append(openai_model(name, "stratus"))
    data += [openai_model(name, "stratus") for name in chat.embedding_models() if name not in aliases]
    return {"object": "list", "data": data}


@v1.get("/models/{model:path}", response_model=None)
async def get_model(model: str, user: CurrentUser, chat: Chat) -> Any:
    listed = await list_models(user, chat)
    for entry in listed["data"]:
        if entry["id"] == model:
            return dict(entry)
    return openai_error(404, f"The model '{model}' does not exist", param="model", code="model_not_found")


def _vector(values: list[float], encoding: str) -> list[float] | str:
    if encoding == "base64":
        return base64.b64encode(struct.pack(f"<{len(values)}f", *values)).decode()
    return values


@v1.post("/embeddings")
async def embeddings(
    body: EmbeddingRequest, user: CurrentUser, chat: Chat, settings: AppSettings
) -> dict[str, Any]:
    """OpenAI's embeddings on the served embedding models (all-MiniLM-L6-v2: 384 dimensions)."""
    model, vectors, tokens = await chat.embeddings(
        user, body.texts(), body.model, wait_s=settings.task_max_wait_s
    )
    size = len(vectors[0]) if vectors else None
    if body.dimensions is not None and size is not None and body.dimensions != size:
        message = f"{model} returns {size}-dimensional embeddings, not {body.dimensions}"
        raise ValidationFailed(
            f"dimensions: {message}", details=[{"field": "dimensions", "message": message}]
        )
    return {
        "object": "list",
        "data": [
            {"object": "embedding", "index": i, "embedding": _vector(v, body.encoding_format)}
            for i, v in enumerate(vectors)
        ],
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def routers() -> list[APIRouter]:
    return [seed, v1]
