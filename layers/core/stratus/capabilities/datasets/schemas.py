"""Dataset resources: seed 003's counts and preview and seed 001's metadata, in one record."""

from typing import Any, Literal

from pydantic import ConfigDict, Field, computed_field, field_validator, model_validator

from stratus.db.ids import IdOut
from stratus.schemas.base import Schema
from stratus.schemas.common import PositiveInt64, PublicModel, UtcDateTime

DatasetType = Literal[
    "classification", "regression", "text", "image", "instruction", "chat", "tabular", "timeseries", "other"
]
DatasetStatus = Literal["awaiting_upload", "processing", "ready", "failed"]
SortBy = Literal["name", "created_at", "uploaded_at", "size"]


class PreviewData(Schema):
    headers: list[str]
    rows: list[list[Any]]


class ColumnPublic(Schema):
    name: str
    type: str
    nulls: int
    non_null: int


class DatasetMetadata(Schema):
    rows: int
    columns: int
    features: list[str]
    target: str | None
    classes: dict[str, int] | None = Field(default=None, description="Images per class, for image archives")

    @field_validator("classes", mode="before")
    @classmethod
    def _classes(cls, value: Any) -> Any:
        if isinstance(value, list):
            return {item["label"]: item["count"] for item in value}
        return value


class DatasetPublic(PublicModel):
    user_id: IdOut
    name: str
    file_name: str
    description: str | None = None
    dataset_type: str | None = None
    format: str | None = None
    kind: str | None = None
    file_size: int
    status: DatasetStatus
    error: str | None = None
    row_count: int | None = None
    column_count: int | None = None
    preview_data: PreviewData | None = None
    metadata: DatasetMetadata | None = None
    columns: list[ColumnPublic] | None = None
    uploaded_at: UtcDateTime
    created_at: UtcDateTime
    processed_at: UtcDateTime | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def column_types(self) -> dict[str, str] | None:
        """Inferred type per column: integer, float, boolean, datetime or string."""
        return {c.name: c.type for c in self.columns} if self.columns is not None else None

    @model_validator(mode="before")
    @classmethod
    def _uploaded_at(cls, data: Any) -> Any:
        if isinstance(data, dict) and "uploaded_at" not in data:
            return {**data, "uploaded_at": data.get("created_at")}
        return data


class DatasetPage(Schema):
    """Seed 001's list envelope."""

    total: int
    page: int
    limit: int
    offset: int
    datasets: list[DatasetPublic]


class UploadRequest(Schema):
    """Ask for a presigned URL to PUT a large file straight to storage."""

    model_config = ConfigDict(extra="forbid")

    filename: str = Field(min_length=1, max_length=255)
    size: PositiveInt64 = Field(description="Exact size in bytes of the file to upload")
    content_type: str | None = Field(default=None, max_length=100)
    name: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=2000)
    dataset_type: DatasetType | None = None


class UploadInstructions(Schema):
    url: str
    method: str
    headers: dict[str, str]
    expires_in: int


class UploadTicket(Schema):
    dataset: DatasetPublic
    upload: UploadInstructions
    complete_url: str


class RowsPage(Schema):
    dataset_id: str
    offset: int
    limit: int
    total: int | None
    rows: list[dict[str, Any]]
