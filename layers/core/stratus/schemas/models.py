"""Model registry records (seed 003's /api/models shape)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_serializer, field_validator

from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.common import PublicModel, UtcDateTime


def _metric(value: Any) -> Any:
    # Seed 003 sends metrics as strings ("0.95"); we keep numbers and render them back as strings.
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise ValueError("must be a number") from e


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(min_length=1, max_length=200)
    base_model: str = Field(min_length=1, max_length=200)
    version: str = Field(default="1.0.0", min_length=1, max_length=50)
    accuracy: float | None = None
    f1_score: float | None = None
    loss: float | None = None
    status: str = Field(default="ready", max_length=40)
    dataset_id: ObjectIdStr | None = None
    task: str | None = Field(default=None, max_length=60)

    _metrics = field_validator("accuracy", "f1_score", "loss", mode="before")(_metric)


class ModelUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str | None = Field(default=None, min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=50)
    accuracy: float | None = None
    f1_score: float | None = None
    loss: float | None = None
    status: str | None = Field(default=None, max_length=40)

    _metrics = field_validator("accuracy", "f1_score", "loss", mode="before")(_metric)


class ModelRecordPublic(PublicModel):
    model_config = ConfigDict(protected_namespaces=())

    user_id: IdOut | None
    name: str
    base_model: str | None = None
    version: str | None = None
    accuracy: float | None = None
    f1_score: float | None = None
    loss: float | None = None
    status: str
    source: str = "user"
    task: str | None = None
    dataset_id: IdOut | None = None
    created_at: UtcDateTime

    @field_serializer("accuracy", "f1_score", "loss")
    def _as_text(self, value: float | None) -> str | None:
        return None if value is None else repr(value)
