"""Seed 003's chats and messages, field for field; the assistant's messages add `query` (the plan and
the query that computed the numbers) and `reply_to` (the user message they answer)."""

from typing import Any, Literal

from pydantic import ConfigDict, Field

from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.base import Schema
from stratus.schemas.common import Clearable, PublicModel, UpdateModel, UtcDateTime

MAX_TITLE_CHARS = 200
MAX_CONTENT_CHARS = 20_000
MAX_MODEL_CHARS = 200
Role = Literal["user", "assistant", "system"]


class ChatCreate(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    title: str = Field(min_length=1, max_length=MAX_TITLE_CHARS)
    model_id: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_MODEL_CHARS,
        description="The language model that answers: the id of one of your models (downloaded or "
        "fine-tuned) or a built-in model's name; the default chat model when omitted",
    )
    dataset_id: ObjectIdStr | None = Field(
        default=None,
        description="One of your datasets (status `ready`): questions about it are answered "
        "with computed numbers",
    )


class ChatUpdate(UpdateModel):
    """All fields optional; at least one is required (400 otherwise). `model_id`/`dataset_id` accept
    null to unbind."""

    model_config = ConfigDict(protected_namespaces=())

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_CHARS)
    model_id: Clearable[str] = Field(default=None, min_length=1, max_length=MAX_MODEL_CHARS)
    dataset_id: Clearable[ObjectIdStr] = None


class ChatPublic(PublicModel):
    model_config = ConfigDict(protected_namespaces=())

    user_id: IdOut
    title: str
    model_id: str | None = None
    dataset_id: IdOut | None = None
    last_updated: UtcDateTime


class MessageCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    chat_id: ObjectIdStr
    role: Role
    content: str = Field(min_length=1, max_length=MAX_CONTENT_CHARS)
    query_type: str | None = Field(default=None, max_length=40, description='e.g. "analytics", "general"')
    charts: Any = None


class MessagePublic(PublicModel):
    chat_id: IdOut
    role: str
    content: str
    query_type: str | None = None
    charts: Any = None
    timestamp: UtcDateTime
    # Assistant messages only: the user message answered, and how the numbers were computed
    # ({"plan", "sql", "params", "columns", "rows", "kind"}), so the user can see the work.
    reply_to: IdOut | None = None
    query: dict[str, Any] | None = None
    model: str | None = None
