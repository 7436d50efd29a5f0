"""Custom task requests and answers (seed 000's shapes)."""

from typing import Any

from pydantic import ConfigDict, Field, field_validator

from stratus.capabilities.custom_tasks import spec
from stratus.schemas.base import Schema
from stratus.schemas.common import Clearable, UpdateModel, UtcDateTime

Code = Field(default="", max_length=spec.MAX_CODE_CHARS)


def _tags(value: list[str] | None) -> list[str] | None:
    if value is None:
        return None
    cleaned = []
    for tag in value:
        tag = tag.strip()
        if not tag or len(tag) > spec.MAX_TAG_CHARS:
            raise ValueError(f"tags must be 1 to {spec.MAX_TAG_CHARS} characters")
        if tag not in cleaned:
            cleaned.append(tag)
    return cleaned


def _has_entrypoint(value: str) -> str:
    if "custom_function" not in value:
        raise ValueError("must define custom_function(text)")
    return value


class CustomRunRequest(Schema):
    """POST /tasks/custom: the code runs in the sandbox; custom_function(input_text) is the result."""

    model_config = ConfigDict(extra="forbid")
    tokenizer_code: str = Code
    model_code: str = Code
    function_code: str = Field(min_length=1, max_length=spec.MAX_CODE_CHARS)
    input_text: str = Field(default="", max_length=spec.MAX_INPUT_CHARS)
    _entry = field_validator("function_code")(_has_entrypoint)


class RunSavedRequest(Schema):
    model_config = ConfigDict(extra="forbid")
    input_text: str = Field(default="", max_length=spec.MAX_INPUT_CHARS)


class CustomTaskCreate(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())
    name: str = Field(min_length=1, max_length=spec.MAX_NAME_CHARS)
    description: str = Field(default="", max_length=spec.MAX_DESCRIPTION_CHARS)
    tags: list[str] = Field(default_factory=list, max_length=spec.MAX_TAGS)
    tokenizer_code: str = Code
    model_code: str = Code
    function_code: str = Field(min_length=1, max_length=spec.MAX_CODE_CHARS)
    model_name: str | None = Field(default=None, min_length=1, max_length=200)
    _tags = field_validator("tags")(_tags)
    _entry = field_validator("function_code")(_has_entrypoint)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value.strip()


class CustomTaskUpdate(UpdateModel):
    """PUT: the fields given are replaced (null only clears `model_name`)."""

    model_config = ConfigDict(protected_namespaces=())
    name: str | None = Field(default=None, min_length=1, max_length=spec.MAX_NAME_CHARS)
    description: str | None = Field(default=None, max_length=spec.MAX_DESCRIPTION_CHARS)
    tags: list[str] | None = Field(default=None, max_length=spec.MAX_TAGS)
    tokenizer_code: str | None = Field(default=None, max_length=spec.MAX_CODE_CHARS)
    model_code: str | None = Field(default=None, max_length=spec.MAX_CODE_CHARS)
    function_code: str | None = Field(default=None, min_length=1, max_length=spec.MAX_CODE_CHARS)
    model_name: Clearable[str] = Field(default=None, min_length=1, max_length=200)
    _tags = field_validator("tags")(_tags)

    @field_validator("function_code")
    @classmethod
    def _entry(cls, value: str | None) -> str | None:
        return None if value is None else _has_entrypoint(value)


class CustomTaskPublic(Schema):
    model_config = ConfigDict(protected_namespaces=())
    id: str
    name: str
    description: str
    tags: list[str]
    tokenizer_code: str
    model_code: str
    function_code: str
    model_name: str | None
    runs: int
    last_run_at: UtcDateTime | None
    created_at: UtcDateTime
    updated_at: UtcDateTime


class ExportRequest(Schema):
    model_config = ConfigDict(extra="forbid")
    task_ids: list[str] = Field(min_length=1, max_length=spec.MAX_EXPORT_TASKS)


class ImportItem(Schema):
    index: int
    name: str | None = None
    id: str | None = None
    reason: str | None = None


class ImportReport(Schema):
    imported: list[ImportItem]
    refused: list[ImportItem]
    imported_count: int
    refused_count: int


class CustomTaskStats(Schema):
    total_tasks: int
    by_tag: dict[str, int]
    by_model: dict[str, int]
    runs: int
    completed: int
    failed: int
    pending: int
    success_rate: float | None = Field(description="completed / finished runs (last 7 days)")
    mean_duration_ms: float | None
    failure_reasons: dict[str, int]
    saved_task_runs: int
    window_days: int = 7


def public(doc: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": str(doc["_id"]),
        **{name: doc.get(name) for name in spec.PORTABLE_FIELDS},
        "description": doc.get("description") or "",
        "tags": list(doc.get("tags") or []),
        "tokenizer_code": doc.get("tokenizer_code") or "",
        "model_code": doc.get("model_code") or "",
        "runs": int(doc.get("runs") or 0),
        "last_run_at": doc.get("last_run_at"),
        "created_at": doc["created_at"],
        "updated_at": doc.get("updated_at") or doc["created_at"],
    }
