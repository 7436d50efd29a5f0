"""The `download` job kind: a Hub repository becomes one of the user's models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratus.jobs.kinds import JobKind, JobWebhooks, Resources
from stratus.ml import catalogue

DOWNLOAD = "download"
HUB = "hub"


def progress_view(job: Mapping[str, Any]) -> dict[str, Any]:
    """A download's progress in the names clients read (the worker reports files as steps)."""
    metrics = job.get("metrics") or {}
    return {
        "download_id": str(job["_id"]),
        "model_name": job["model_name"],
        "status": job["status"],
        "progress": job.get("progress", 0.0),
        "files_done": job.get("current_step", 0),
        "files_total": job.get("total_steps", 0),
        "bytes_downloaded": int(metrics.get("bytes_downloaded") or 0),
        "total_bytes": int(metrics.get("total_bytes") or 0),
    }


async def register_model(models: Any, job: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """A downloaded Hub model, described by the worker from its files. `tasks` are those the inference
    worker can serve with it (none yet for, say, a vision model)."""
    info = dict(detail.get("model") or {})
    serving = catalogue.downloaded_serving(info.get("architecture"), info.get("model_type"))
    model: dict[str, Any] = await models.register_for_job(
        job["user_id"],
        job["_id"],
        {
            "name": job["model_name"],
            "name_key": str(job["model_name"]).lower(),
            "source": HUB,
            "status": "ready",
            "task": job.get("task"),
            "tasks": list(serving[1]) if serving else [],
            "model_type": info.get("model_type"),
            "architecture": {"class": info.get("architecture")},
            "parameters": info.get("parameters"),
            "size_mb": info.get("size_mb"),
            "labels": info.get("labels"),
            "max_sequence_length": info.get("max_sequence_length"),
            "revision": info.get("commit"),
            "files": list(info.get("file_names") or []),
            "artifacts": dict(detail.get("artifacts") or {}),
        },
    )
    return model


KIND = JobKind(
    name=DOWNLOAD,
    worker="stratus_worker.hub_download",
    resources=Resources(gpu=False, memory_mb=2048, max_runtime_s=2 * 3600),
    # Its start and progress reach the WebSocket only; its end is announced under its own names.
    webhooks=JobWebhooks(completed="model.downloaded", failed="model.download_failed"),
    register_result=register_model,
    progress_view=progress_view,
    webhook_fields=lambda job: {"model_name": job.get("model_name")},
)
