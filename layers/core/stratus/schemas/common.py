"""Shared schema pieces: UTC timestamps, public models that carry both `id` and `_id`, pagination."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, PlainSerializer, computed_field

from stratus.db.ids import IdOut


def iso_utc(value: datetime) -> str:
    """2025-11-10T12:00:00.000Z: UTC, millisecond precision, the seeds' format."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDateTime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str, when_used="json")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class PublicModel(BaseModel):
    """A resource as clients see it. Seeds 001/004 read `id`, seed 003 reads `_id`: we send both."""

    model_config = ConfigDict(populate_by_name=True, from_attributes=True)

    id: IdOut = Field(validation_alias=AliasChoices("_id", "id"))

    @computed_field(alias="_id")  # type: ignore[prop-decorator]
    @property
    def object_id(self) -> str:
        return self.id

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Any:
        return cls.model_validate(doc)


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    """A page in both styles the seeds use: page/limit (001) and limit/offset (003, 004)."""

    items: list[T]
    total: int
    limit: int
    offset: int
    page: int
