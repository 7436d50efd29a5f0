"""Seed 000's model downloads: POST /models/download and the download's status."""

from typing import Literal

from pydantic import AliasChoices, ConfigDict, Field

from stratus.schemas.base import Schema
from stratus.schemas.common import UtcDateTime

TaskType = Literal[
    "classification", "qa", "ner", "summarization", "embeddings", "generation", "object-detection"
]

# A Hub repository id: "name" or "owner/name" (letters, digits, '-', '_', '.').
REPO_ID = r"^(?:[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$"


class ModelDownloadRequest(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=(), populate_by_name=True)

    model_name: str = Field(
        pattern=REPO_ID,
        max_length=200,
        validation_alias=AliasChoices("model_name", "repo_id"),
        description="A Hugging Face Hub repository id, e.g. distilbert-base-uncased or org/name",
    )
    task_type: TaskType = Field(
        validation_alias=AliasChoices("task_type", "task"), description="The task the model will serve"
    )
    revision: str = Field(default="main", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-/]+$")


class ModelDownloadPublic(Schema):
    """A download: queued, running (with files and bytes so far), completed (with the model's id) or
    failed (with the reason). A built-in or already downloaded model answers `available` at once."""

    model_config = ConfigDict(protected_namespaces=())

    download_id: str | None = None
    model_name: str
    task_type: str | None = None
    status: str
    source: Literal["hub", "builtin"] = "hub"
    progress: float = 0.0
    files_done: int = 0
    files_total: int = 0
    bytes_downloaded: int = 0
    total_bytes: int = 0
    model_id: str | None = None
    error: str | None = None
    message: str | None = None
    websocket: str | None = Field(default=None, description="Where progress is pushed (local runtime)")
    created_at: UtcDateTime | None = None
    completed_at: UtcDateTime | None = None
