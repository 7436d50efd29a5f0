"""Shared schema pieces: UTC timestamps, public models that carry both `id` and `_id`, pagination,
integers MongoDB can store, and update bodies that cannot null out a required field."""

from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    ValidationInfo,
    computed_field,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from stratus.db.ids import IdOut
from stratus.schemas.base import Schema


def iso_utc(value: datetime) -> str:
    """2025-11-10T12:00:00.000Z: UTC, millisecond precision, the seeds' format."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


UtcDateTime = Annotated[datetime, PlainSerializer(iso_utc, return_type=str, when_used="json")]


def utcnow() -> datetime:
    return datetime.now(UTC)


class PublicModel(Schema):
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

# MongoDB stores integers as int64 and takes int64 skip/limit: pymongo cannot encode a larger one (a 500),
# so every integer a client sends that can reach the database is bounded by this.
INT64_MAX = 2**63 - 1
PositiveInt64 = Annotated[int, Field(ge=1, le=INT64_MAX)]


class _ClearableMark:
    def __repr__(self) -> str:
        return "Clearable"


_CLEARABLE = _ClearableMark()
# An update field that null empties: only where the resource's read model admits null for it.
Clearable = Annotated[T | None, _CLEARABLE]


def _clearable(field: FieldInfo) -> bool:
    return _CLEARABLE in field.metadata


def _schema_keys(name: str, field: FieldInfo) -> set[str]:
    keys = {name, field.alias or name}
    alias = field.validation_alias
    if isinstance(alias, str):
        keys.add(alias)
    elif isinstance(alias, AliasChoices):
        keys.update(choice for choice in alias.choices if isinstance(choice, str))
    return keys


def _null_only_if_clearable(schema: dict[str, Any], cls: type[BaseModel]) -> None:
    """The OpenAPI document says what the validator enforces: no null for a field that is not Clearable."""
    strict = set().union(*(_schema_keys(n, f) for n, f in cls.model_fields.items() if not _clearable(f)))
    for key, prop in schema.get("properties", {}).items():
        if key in strict and "anyOf" in prop:
            variants = [v for v in prop.pop("anyOf") if v != {"type": "null"}]
            prop.update(variants[0] if len(variants) == 1 else {"anyOf": variants})


class UpdateModel(Schema):
    """A PATCH or PUT body: every field optional, an omitted one left unchanged (dump with
    `exclude_unset`). An explicit null is refused (422 naming the field) unless the field is typed
    `Clearable[...]`: stored, a null in a field the read model requires would break every read."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_null_only_if_clearable)

    @field_validator("*", mode="before")
    @classmethod
    def _no_null(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None and info.field_name and not _clearable(cls.model_fields[info.field_name]):
            raise PydanticCustomError("null_not_allowed", "must not be null (omit it to leave it unchanged)")
        return value


class Page(BaseModel, Generic[T]):
    """A page in both styles the seeds use: page/limit (001) and limit/offset (003, 004)."""

    model_config = ConfigDict(defer_build=True)

    items: list[T]
    total: int
    limit: int
    offset: int
    page: int


# A confirmation with nothing else to return (logout, deletes). Here rather than with identity's schemas
# so that other groups' routes answer with it without importing those. (No docstring: it would become
# the schema's description in the OpenAPI document.)
class MessageResponse(Schema):
    message: str
