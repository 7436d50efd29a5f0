"""NLP task requests (seed 000's shapes) and results."""

from typing import Any, ClassVar

from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from stratus.capabilities.nlp import spec
from stratus.capabilities.nlp.spec import MAX_TEXT_CHARS
from stratus.schemas.base import Schema
from stratus.schemas.common import UtcDateTime

ModelName = Field(
    default=None, min_length=1, max_length=200, description="Defaults to the task's built-in model"
)


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return value


class TaskRequest(Schema):
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
        default=None,
        min_length=spec.CANDIDATE_LABELS.min,
        max_length=spec.CANDIDATE_LABELS.max,
        description="Zero-shot labels; sentiment when omitted",
    )
    _text = field_validator("text")(_not_blank)


class QARequest(TaskRequest):
    task = "qa"
    question: str = Field(min_length=1, max_length=spec.MAX_QUESTION_CHARS)
    context: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    _blank = field_validator("question", "context")(_not_blank)


class NERRequest(TaskRequest):
    task = "ner"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    _text = field_validator("text")(_not_blank)


class SummarizationRequest(TaskRequest):
    task = "summarization"
    text: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    max_length: int = Field(
        default=spec.SUMMARY_MAX_LENGTH.default, ge=spec.SUMMARY_MAX_LENGTH.ge, le=spec.SUMMARY_MAX_LENGTH.le
    )
    min_length: int = Field(
        default=spec.SUMMARY_MIN_LENGTH.default, ge=spec.SUMMARY_MIN_LENGTH.ge, le=spec.SUMMARY_MIN_LENGTH.le
    )
    _text = field_validator("text")(_not_blank)

    @field_validator("min_length")
    @classmethod
    def _at_most_max(cls, value: int, info: ValidationInfo) -> int:
        if value > info.data.get("max_length", value):
            raise ValueError("must not exceed max_length")
        return value


class EmbeddingsRequest(TaskRequest):
    task = "embeddings"
    text: str | list[str] = Field(description=f"One text or a list of up to {spec.EMBEDDING_TEXTS.max} texts")
    normalize: bool = spec.NORMALIZE_DEFAULT

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
        if not spec.EMBEDDING_TEXTS.min <= len(texts) <= spec.EMBEDDING_TEXTS.max:
            raise ValueError(f"give {spec.EMBEDDING_TEXTS.min} to {spec.EMBEDDING_TEXTS.max} texts")
        for text in texts:
            if not text.strip():
                raise ValueError("texts must not be empty")
            if len(text) > MAX_TEXT_CHARS:
                raise ValueError(f"each text must be at most {MAX_TEXT_CHARS} characters")
        return value


class GenerationRequest(TaskRequest):
    task = "generation"
    prompt: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    max_tokens: int = Field(default=spec.MAX_TOKENS.default, ge=spec.MAX_TOKENS.ge, le=spec.MAX_TOKENS.le)
    temperature: float = Field(
        default=spec.TEMPERATURE.default, ge=spec.TEMPERATURE.ge, le=spec.TEMPERATURE.le
    )
    _prompt = field_validator("prompt")(_not_blank)


class TaskResponse(Schema):
    """A finished task carries `result`; a pending one (202) only its id and status."""

    task_id: str
    task: str
    status: str
    model: str
    result: Any = None
    error: str | None = None
    created_at: UtcDateTime
    completed_at: UtcDateTime | None = None
    # custom tasks only: why the run failed, and the sandbox layers applied or missing
    reason: str | None = None
    isolation: dict[str, str] | None = None
