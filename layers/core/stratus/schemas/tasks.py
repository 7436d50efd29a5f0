"""NLP task requests (seed 000's shapes) and results."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from stratus.schemas.common import UtcDateTime

MAX_TEXT_CHARS = 100_000
ModelName = Field(
    default=None, min_length=1, max_length=200, description="Defaults to the task's built-in model"
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class TaskRequest(BaseModel):
    """A task request knows its task and how it becomes the worker's inputs (one per text) and options."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    task: ClassVar[str]

    model_name: str | None = ModelName

    def inputs(self) -> list[dict[str, Any]]:
        return [self.model_dump(exclude={"model_name"})]

    def options(self) -> dict[str, Any]:
        return {}

    @property
    def single(self) -> bool:
        """One input, answered as one result (an embeddings request may send a list)."""
        return True


class ClassificationRequest(TaskRequest):
    task = "classification"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    candidate_labels: list[str] | None = Field(
        default=None, min_length=2, max_length=50, description="Zero-shot labels; sentiment when omitted"
    )
    _text = field_validator("text")(_not_blank)


class QARequest(TaskRequest):
    task = "qa"
    question: str = Field(min_length=1, max_length=2_000)
    context: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    _blank = field_validator("question", "context")(_not_blank)


class NERRequest(TaskRequest):
    task = "ner"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    _text = field_validator("text")(_not_blank)


class SummarizationRequest(TaskRequest):
    task = "summarization"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    max_length: int = Field(default=150, ge=5, le=1024)
    min_length: int = Field(default=30, ge=0, le=1024)
    _text = field_validator("text")(_not_blank)

    @field_validator("min_length")
    @classmethod
    def _at_most_max(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_length", value):
            raise ValueError("must not exceed max_length")
        return value


class EmbeddingsRequest(TaskRequest):
    task = "embeddings"
    text: str | list[str] = Field(description="One text or a list of up to 256 texts")
    normalize: bool = False

    def inputs(self) -> list[dict[str, Any]]:
        return [{"text": text} for text in ([self.text] if isinstance(self.text, str) else self.text)]

    def options(self) -> dict[str, Any]:
        return {"normalize": self.normalize}

    @property
    def single(self) -> bool:
        return isinstance(self.text, str)

    @field_validator("text")
    @classmethod
    def _texts(cls, value: str | list[str]) -> str | list[str]:
        texts = [value] if isinstance(value, str) else value
        if not texts or len(texts) > 256:
            raise ValueError("give 1 to 256 texts")
        for text in texts:
            if not text.strip():
                raise ValueError("texts must not be empty")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"each text must be at most {MAX_TEXT_CHARS} characters")
        return value


class GenerationRequest(TaskRequest):
    task = "generation"
    prompt: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    max_tokens: int = Field(default=128, ge=1, le=1024)
    temperature: float = Field(default=0.7, ge=0, le=2)
    _prompt = field_validator("prompt")(_not_blank)


class TaskResponse(BaseModel):
    """A finished task carries `result`; a pending one (202) only its id and status."""

    task_id: str
    task: str
    status: str
    model: str
    result: Any = None
    error: str | None = None
    created_at: UtcDateTime
    completed_at: UtcDateTime | None = None
