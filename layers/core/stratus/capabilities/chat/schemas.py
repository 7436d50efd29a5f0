"""Seed 004's /api/chat shapes and the OpenAI-compatible /v1 shapes."""

from typing import Any, Literal, Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from stratus.capabilities.chat import spec
from stratus.schemas.base import Schema
from stratus.schemas.common import INT64_MAX, UtcDateTime


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


# ----------------------------------------------------------------------------------------- seed 004


class ChatRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    message: str = Field(min_length=1, max_length=spec.MAX_MESSAGE_CHARS)
    model: str | None = Field(
        default=None, min_length=1, max_length=200, description="A served model or an alias (gpt-4, ...)"
    )
    temperature: float = Field(
        default=spec.TEMPERATURE.default, ge=spec.TEMPERATURE.ge, le=spec.TEMPERATURE.le
    )
    max_tokens: int = Field(default=spec.MAX_TOKENS.default, ge=spec.MAX_TOKENS.ge, le=spec.MAX_TOKENS.le)
    _message = field_validator("message")(_not_blank)


class Usage(Schema):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ChatResponse(Schema):
    id: str
    message: str
    model: str = Field(description="The served model that answered (an alias the client sent resolved)")
    usage: Usage
    created_at: UtcDateTime
    finish_reason: Literal["stop", "length"]
    requested_model: str | None = None
    dropped_messages: int = Field(0, description="Oldest messages left out to fit the model's context")


class ChatHistoryItem(Schema):
    id: str
    message: str
    response: str
    model: str
    created_at: UtcDateTime


class ChatHistory(Schema):
    messages: list[ChatHistoryItem]
    total: int
    limit: int
    offset: int


# ----------------------------------------------------------------------------------------- OpenAI


class TextPart(Schema):
    type: Literal["text"]
    text: str


class OpenAIMessage(Schema):
    model_config = ConfigDict(extra="ignore")

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart] | None = None
    name: str | None = None

    def text(self) -> str:
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(Schema):
    include_usage: bool = False


class ChatCompletionRequest(Schema):
    """OpenAI's chat completions request; fields we do not act on (penalties, logit_bias, tools...)
    are accepted and ignored, as most compatible servers do."""

    model_config = ConfigDict(extra="ignore")

    model: str = Field(min_length=1, max_length=200)
    messages: list[OpenAIMessage] = Field(min_length=1, max_length=spec.MAX_MESSAGES)
    temperature: float | None = Field(default=None, ge=spec.TEMPERATURE.ge, le=spec.TEMPERATURE.le)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    max_tokens: int | None = Field(default=None, ge=spec.MAX_TOKENS.ge, le=spec.MAX_TOKENS.le)
    max_completion_tokens: int | None = Field(default=None, ge=spec.MAX_TOKENS.ge, le=spec.MAX_TOKENS.le)
    stop: str | list[str] | None = None
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(default=1, ge=1, le=1, description="One choice per request")
    seed: int | None = Field(
        default=None, ge=0, le=INT64_MAX, description="Sampling seed (same seed, same reply)"
    )
    user: str | None = None

    @field_validator("stop")
    @classmethod
    def _stop(cls, value: str | list[str] | None) -> str | list[str] | None:
        stops = [value] if isinstance(value, str) else value or []
        if len(stops) > spec.MAX_STOP:
            raise ValueError(f"at most {spec.MAX_STOP} stop sequences")
        if any(not s or len(s) > spec.MAX_STOP_CHARS for s in stops):
            raise ValueError(f"stop sequences must be 1 to {spec.MAX_STOP_CHARS} characters")
        return value

    @model_validator(mode="after")
    def _last_message(self) -> Self:
        if self.messages and self.messages[-1].role == "user" and not self.messages[-1].text().strip():
            raise ValueError(f"messages[{len(self.messages) - 1}].content must not be empty")
        return self

    def budget(self) -> int:
        return self.max_completion_tokens or self.max_tokens or spec.MAX_TOKENS.default

    def chat_messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system" if m.role == "developer" else m.role, "content": m.text()}
            for m in self.messages
        ]


class EmbeddingRequest(Schema):
    model_config = ConfigDict(extra="ignore")

    input: str | list[str] = Field(description="A text or a list of texts (token arrays are not accepted)")
    model: str = Field(min_length=1, max_length=200)
    encoding_format: Literal["float", "base64"] = "float"
    # The served models have one size each: a request naming another is refused, never silently ignored.
    dimensions: int | None = Field(
        default=None, ge=1, le=16384, description="Must equal the model's own size"
    )
    user: str | None = None

    @field_validator("input")
    @classmethod
    def _input(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not 1 <= len(texts) <= 256:
            raise ValueError("give 1 to 256 texts")
        if any(not t.strip() for t in texts):
            raise ValueError("texts must not be empty")
        return value

    def texts(self) -> list[str]:
        return [self.input] if isinstance(self.input, str) else list(self.input)


def openai_model(name: str, owned_by: str, created: int = 0) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": created, "owned_by": owned_by}
