"""API key models: the full key appears only in the create response."""

from typing import Any

from pydantic import ConfigDict, Field, model_validator

from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.base import Schema
from stratus.schemas.common import PublicModel, UtcDateTime
from stratus.security.api_keys import masked


class ApiKeyCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=100)
    # Seed 003 binds a key to one model; without one the key acts for the user (seed 000's login).
    model_id: ObjectIdStr | None = None


class ApiKeyPublic(PublicModel):
    user_id: IdOut
    model_id: IdOut | None
    name: str
    key_prefix: str
    key: str = Field(description="Masked; the full key is only returned when it is created")
    created_at: UtcDateTime
    last_used_at: UtcDateTime | None = None

    @model_validator(mode="before")
    @classmethod
    def _mask(cls, data: Any) -> Any:
        if isinstance(data, dict) and "key" not in data:
            return {**data, "key": masked(data.get("key_prefix", "sk-"))}
        return data


class ApiKeyCreated(ApiKeyPublic):
    key: str = Field(description="The full key. Store it now: it is not shown again")
