"""Request and response models for accounts and sessions, accepting every seed's shapes."""

from typing import Any, Self

from pydantic import AliasChoices, ConfigDict, EmailStr, Field, field_validator, model_validator

from stratus.schemas.base import Schema
from stratus.schemas.common import PublicModel, UpdateModel, UtcDateTime


def _normalise_email(value: Any) -> Any:
    return value.strip().lower() if isinstance(value, str) else value


class UserCreate(Schema):
    """Seed 003/004: email, password, name. Seed 001: username, email, password, full_name."""

    model_config = ConfigDict(extra="ignore")

    email: EmailStr
    password: str = Field(min_length=1, max_length=256)
    name: str = Field(min_length=1, max_length=120, validation_alias=AliasChoices("name", "full_name"))
    username: str | None = Field(default=None, min_length=3, max_length=40, pattern=r"^[A-Za-z0-9_.-]+$")

    _email = field_validator("email", mode="before")(_normalise_email)

    @model_validator(mode="before")
    @classmethod
    def _name_from_username(cls, data: Any) -> Any:
        # Seed 001 sends full_name; a seed-001 client that omits it still registers under its username.
        if (
            isinstance(data, dict)
            and not (data.get("name") or data.get("full_name"))
            and data.get("username")
        ):
            return {**data, "name": data["username"]}
        return data


class LoginRequest(Schema):
    """One body, three seeds: email+password (003, 004), username+password (001), api_key alone (000)."""

    model_config = ConfigDict(extra="ignore")

    email: EmailStr | None = None
    username: str | None = Field(default=None, max_length=254)
    password: str | None = Field(default=None, max_length=256)
    api_key: str | None = Field(default=None, max_length=128)

    _email = field_validator("email", mode="before")(_normalise_email)

    @model_validator(mode="after")
    def _one_shape(self) -> Self:
        if self.api_key is not None:
            return self
        if self.password is None:
            raise ValueError("password is required (or send api_key alone)")
        if self.email is None and self.username is None:
            raise ValueError("email or username is required")
        return self


class RefreshRequest(Schema):
    refresh_token: str = Field(min_length=1, max_length=4096)


class LogoutRequest(Schema):
    refresh_token: str | None = Field(default=None, max_length=4096)


class UserPublic(PublicModel):
    email: str
    name: str
    full_name: str
    username: str | None = None
    current_plan: str
    queries_used: int
    fine_tune_jobs: int
    datasets_count: int
    billing_cycle: str | None
    created_at: UtcDateTime
    updated_at: UtcDateTime

    @model_validator(mode="before")
    @classmethod
    def _full_name(cls, data: Any) -> Any:
        if isinstance(data, dict) and "full_name" not in data:
            return {**data, "full_name": data.get("name", "")}
        return data


class UserUpdate(UpdateModel):
    name: str | None = Field(
        default=None, min_length=1, max_length=120, validation_alias=AliasChoices("name", "full_name")
    )
    email: EmailStr | None = None

    _email = field_validator("email", mode="before")(_normalise_email)


class TokenResponse(Schema):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class LoginResponse(TokenResponse):
    user: UserPublic


class RegisterResponse(UserPublic):
    """Seed 003 reads the user at the top level; seed 004 reads `user` and the tokens. Both are here."""

    user: UserPublic
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
