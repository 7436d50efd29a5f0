"""Model downloads (seed 000): a Hub repository becomes one of the user's models through a download job.

The API only records the job: a container job snapshots the repository into object storage
(stratus_worker.hub_download) and its result event registers the model (source "hub", see
JobEventsService). Asking for a built-in model, or one already downloaded, answers at once; asking
again while a download of the same model is under way returns that download.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from bson import ObjectId

from stratus.capabilities.downloads.schemas import ModelDownloadRequest
from stratus.capabilities.downloads.spec import DOWNLOAD, HUB, progress_view
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import NotFound
from stratus.jobs.lifecycle import ACTIVE
from stratus.jobs.service import JobService
from stratus.ml import catalogue


@dataclass(frozen=True)
class DownloadPolicy:
    """From the settings (STRATUS_HUB_TIMEOUT_S, STRATUS_MAX_MODEL_DOWNLOAD_BYTES), passed to each job."""

    hub_timeout_s: float
    max_bytes: int


class DownloadService:
    def __init__(
        self,
        *,
        jobs: JobService,
        job_repo: JobRepository,
        models: ModelRepository,
        policy: DownloadPolicy,
        follow_url: Callable[[str], str],
    ) -> None:
        self._jobs = jobs
        self._follow_url = follow_url
        self._job_repo = job_repo
        self._models = models
        self.policy = policy

    async def start(
        self, user_id: ObjectId, request: ModelDownloadRequest, *, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """The download's public view, and whether a download job was started (or found running)."""
        builtin = catalogue.find(request.model_name)
        if builtin is not None:
            return {
                "model_name": builtin.name,
                "task_type": request.task_type,
                "status": "available",
                "source": "builtin",
                "progress": 100.0,
                "message": "Built into the platform; nothing to download",
            }, False
        ready = await self._models.find_named(user_id, request.model_name, source=HUB)
        if ready is not None and ready.get("status") == "ready":
            return {
                "model_name": ready["name"],
                "task_type": ready.get("task"),
                "status": "available",
                "progress": 100.0,
                "model_id": str(ready["_id"]),
                "download_id": str(ready["job_id"]) if ready.get("job_id") else None,
                "message": "Already downloaded",
            }, False
        running = await self._job_repo.latest_named(user_id, DOWNLOAD, request.model_name)
        if running is not None and running["status"] in ACTIVE:
            return self._public(running), True
        job, _ = await self._jobs.create(
            {
                "user_id": user_id,
                "kind": DOWNLOAD,
                "model_name": request.model_name,
                "model_key": request.model_name.lower(),
                "task": request.task_type,
                "params": {
                    "repo_id": request.model_name,
                    "revision": request.revision,
                    "task": request.task_type,
                    "timeout_s": self.policy.hub_timeout_s,
                    "max_bytes": self.policy.max_bytes,
                },
                "progress": 0.0,
                "metrics": {},
            },
            idempotency_key=idempotency_key,
        )
        return self._public(job), True

    async def get(self, user_id: ObjectId, download_id: ObjectId) -> dict[str, Any]:
        job = await self._job_repo.get_owned(user_id, download_id)
        if job is None or job.get("kind") != DOWNLOAD:
            raise NotFound("Download not found")
        return self._public(job)

    async def info(self, user_id: ObjectId, model_name: str) -> dict[str, Any]:
        """Seed 000's GET /models/{model_name}/info: a built-in model, a downloaded one, or the state of
        its download."""
        builtin = catalogue.find(model_name)
        if builtin is not None:
            return builtin.describe()
        model = await self._models.find_named(user_id, model_name, source=HUB)
        if model is not None:
            return describe(model)
        job = await self._job_repo.latest_named(user_id, DOWNLOAD, model_name)
        if job is not None and job["status"] != "completed":  # completed: its model was deleted since
            view = self._public(job)
            return {"name": job["model_name"], "task": job.get("task"), "source": HUB, **view}
        available = catalogue.names() + await self._models.names(user_id, source=HUB)
        raise NotFound(
            f"Model '{model_name}' is not available; available: {', '.join(available)}",
            code="MODEL_NOT_FOUND",
            details={"available": available},
        )

    def _public(self, job: dict[str, Any]) -> dict[str, Any]:
        return {
            **progress_view(job),
            "task_type": job.get("task"),
            "model_id": str(job["model_id"]) if job.get("model_id") else None,
            "error": job.get("error"),
            "websocket": self._follow_url(str(job["_id"])),
            "created_at": job.get("created_at"),
            "completed_at": job.get("completed_at"),
        }


def describe(model: dict[str, Any]) -> dict[str, Any]:
    """A downloaded model in the shape of a built-in one's description."""
    architecture = model.get("architecture") or {}
    return {
        "id": str(model["_id"]),
        "name": model["name"],
        "task": model.get("task"),
        "tasks": model.get("tasks") or [],  # what /tasks/* can run it for
        "model_type": model.get("model_type"),
        "architecture": architecture.get("class"),
        "parameters": model.get("parameters"),
        "size_mb": model.get("size_mb"),
        "labels": model.get("labels"),
        "max_sequence_length": model.get("max_sequence_length"),
        "revision": model.get("revision"),
        "source": HUB,
        "status": model.get("status"),
        "download_id": str(model["job_id"]) if model.get("job_id") else None,
    }
