"""Seed 003's fine-tune job records (/api/finetune): jobs the client runs and reports on itself."""

from typing import Any, Literal, get_args

from pydantic import (
    AliasChoices,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
)

from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.base import Schema
from stratus.schemas.common import Clearable, PublicModel, UpdateModel, UtcDateTime

# The statuses seed 003 documents (preparing, training, completed) plus `failed`. None of them is a
# status the job pipeline acts on (queued, starting, running, stopping): see services/finetune.py.
FineTuneStatus = Literal["preparing", "training", "completed", "failed"]
FINETUNE_STATUSES: tuple[str, ...] = get_args(FineTuneStatus)

MAX_STEP_CHARS = 500
MAX_LOG_CHARS = 100_000
MAX_BASE_MODEL_CHARS = 200


class FineTuneCreate(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    dataset_id: ObjectIdStr
    base_model: str = Field(min_length=1, max_length=MAX_BASE_MODEL_CHARS)
    model_id: ObjectIdStr | None = Field(default=None, description="The resulting model, if known")
    status: FineTuneStatus = "preparing"
    progress: int = Field(default=0, ge=0, le=100, description="Percent, 0-100")
    current_step: str | None = Field(default=None, max_length=MAX_STEP_CHARS)
    logs: str | None = Field(default=None, max_length=MAX_LOG_CHARS)


class FineTuneStatusPatch(UpdateModel):
    """The JSON-body form of PATCH /api/finetune/{id}/status; seed 003 sends the same as query parameters."""

    model_config = ConfigDict(protected_namespaces=())

    status: FineTuneStatus | None = Field(
        default=None, validation_alias=AliasChoices("status", "status_update")
    )
    progress: int | None = Field(default=None, ge=0, le=100)
    current_step: Clearable[str] = Field(default=None, max_length=MAX_STEP_CHARS)
    logs: Clearable[str] = Field(default=None, max_length=MAX_LOG_CHARS)
    model_id: Clearable[ObjectIdStr] = None


class FineTuneStatusUpdate(Schema):
    """A validated status change: `status` is always there; the other fields only when the client sent them."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    status: FineTuneStatus
    progress: int | None = Field(default=None, ge=0, le=100)
    current_step: str | None = Field(default=None, max_length=MAX_STEP_CHARS)
    logs: str | None = Field(default=None, max_length=MAX_LOG_CHARS)
    model_id: ObjectIdStr | None = None


class FineTunePublic(PublicModel):
    """Seed 003's fine-tune job, `status` exactly as the client last set it."""

    model_config = ConfigDict(protected_namespaces=())

    user_id: IdOut
    model_id: IdOut | None = None
    dataset_id: IdOut
    base_model: str
    status: str
    progress: int = 0
    current_step: str | None = None
    logs: str | None = None
    created_at: UtcDateTime
    completed_at: UtcDateTime | None = None
    # Platform-managed fine-tunes (seed 002's LoRA/QLoRA jobs) only: who moves the status, the job's
    # own pipeline status and its id for /api/training/status/{task_id}.
    managed_by: str | None = None
    pipeline_status: str | None = None
    task_id: str | None = None

    @model_serializer(mode="wrap")
    def _seed_fields_only_for_client_records(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Seed 003's records keep exactly its fields; the platform's fields appear on its own jobs."""
        data: dict[str, Any] = handler(self)
        if self.managed_by != "platform":
            for name in PLATFORM_FIELDS:
                data.pop(name, None)
        return data


PLATFORM_FIELDS = ("managed_by", "pipeline_status", "task_id")
