"""Webhook models: the signing secret appears only in the create response."""

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from stratus.db.ids import IdOut
from stratus.schemas.base import Schema
from stratus.schemas.common import PublicModel, UtcDateTime

# What an endpoint can subscribe to; "*" is every event, including ones added later.
WebhookEvent = Literal[
    "training.started",
    "training.progress",
    "training.completed",
    "training.failed",
    "dataset.processed",
    "model.downloaded",
    "model.download_failed",
    "finetune.started",
    "finetune.progress",
    "finetune.completed",
    "finetune.failed",
    "finetune.merged",
    "finetune.merge_failed",
    "generation.started",
    "generation.completed",
    "generation.failed",
    "*",
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookCreate(Schema):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="An http(s) URL that accepts POST")
    events: list[WebhookEvent] = Field(min_length=1, max_length=20)
    description: str | None = Field(default=None, max_length=500)

    @field_validator("events")
    @classmethod
    def _dedupe(cls, events: list[str]) -> list[str]:
        return list(dict.fromkeys(events))


class WebhookPublic(PublicModel):
    user_id: IdOut
    url: str
    events: list[str]
    description: str | None = None
    active: bool
    created_at: UtcDateTime


class WebhookCreated(WebhookPublic):
    secret: str = Field(
        description="whsec_…: verifies the webhook-signature header. Store it now: it is not shown again"
    )


class DeliveryPublic(PublicModel):
    webhook_id: IdOut
    event: str
    payload: dict[str, Any]
    status: DeliveryStatus
    attempts: int
    last_status_code: int | None = None
    last_error: str | None = None
    next_attempt_at: UtcDateTime | None = None
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None = None
