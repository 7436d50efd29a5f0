"""The training job kinds, `training` (tables) and `image_training` (images): what the pipeline needs to
know to run them and to register their models."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratus.capabilities.training.images import IMAGE_TRAINING
from stratus.capabilities.training.objective import objective_of
from stratus.jobs.kinds import JobKind, JobWebhooks, Resources

TRAINING = "training"


def progress_view(job: Mapping[str, Any]) -> dict[str, Any]:
    metrics = job.get("metrics") or {}
    return {
        "status": job["status"],
        "progress": job.get("progress", 0.0),
        "current_epoch": job.get("current_epoch", 0),
        "total_epochs": job.get("total_epochs", 0),
        "current_step": job.get("current_step", 0),
        "total_steps": job.get("total_steps", 0),
        "metrics": metrics,
        "loss": metrics.get("loss"),
        "learning_rate": metrics.get("learning_rate"),
    }


async def register_model(models: Any, job: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """The trained model's registry record (idempotent per job: a redelivered result finds it)."""
    info = dict(detail.get("model") or {})
    metrics = dict(detail.get("final_metrics") or {})
    params = job.get("params") or {}
    hp = dict(params.get("hyperparameters") or {})
    model: dict[str, Any] = await models.register_for_job(
        job["user_id"],
        job["_id"],
        {
            "name": job.get("model_name") or f"{job.get('model_type')} model",
            "source": "trained",
            "status": "ready",
            "model_type": job.get("model_type"),
            # A worker older than the rename reports `task`; a job stored before it holds `task` too.
            "objective": objective_of(info) or objective_of(job),
            "dataset_id": job.get("dataset_id"),
            "architecture": info.get("architecture") or {},
            "labels": info.get("labels"),
            "features": info.get("features"),
            "target": info.get("target") or job.get("target"),
            "size_mb": info.get("size_mb"),
            "artifacts": dict(detail.get("artifacts") or {}),
            "accuracy": metrics.get("accuracy"),
            "f1_score": metrics.get("f1_macro"),
            "loss": metrics.get("val_loss"),
            # Seed 001's names for the held-out figures (macro averages for precision/recall/F1).
            "performance": {
                "accuracy": metrics.get("accuracy"),
                "precision": metrics.get("precision_macro"),
                "recall": metrics.get("recall_macro"),
                "f1_score": metrics.get("f1_macro"),
                "rmse": metrics.get("rmse"),
                "mae": metrics.get("mae"),
                "r2": metrics.get("r2"),
                "confusion_matrix": metrics.get("confusion_matrix"),
            },
            "training_config": {
                "dataset_id": str(job.get("dataset_id")),
                "epochs": hp.get("epochs"),
                "batch_size": hp.get("batch_size"),
                "optimizer": hp.get("optimizer"),
                "learning_rate": hp.get("learning_rate"),
                "validation_split": params.get("validation_split"),
                **({"base_model": params["backbone"]} if params.get("backbone") else {}),
                **({"image_size": hp["image_size"]} if params.get("backbone") else {}),
            },
        },
    )
    return model


WEBHOOKS = JobWebhooks(
    started="training.started",
    progress="training.progress",
    completed="training.completed",
    failed="training.failed",
)

KIND = JobKind(
    name=TRAINING,
    worker="stratus_worker.tabular",
    # A tabular MLP trains in minutes on CPU: a GPU instance would cost more and start slower.
    resources=Resources(gpu=False, memory_mb=4096, max_runtime_s=6 * 3600),
    webhooks=WEBHOOKS,
    register_result=register_model,
    progress_view=progress_view,
    completed_view=lambda job, metrics: {"accuracy": metrics.get("accuracy")},
)

IMAGE_KIND = JobKind(
    name=IMAGE_TRAINING,
    worker="stratus_worker.vision.train",
    # Convolutions over every image each epoch: a GPU instance pays for itself (the worker also runs,
    # slower, on a CPU, which is what local runs and the tests use).
    resources=Resources(gpu=True, memory_mb=16384, max_runtime_s=12 * 3600),
    webhooks=WEBHOOKS,
    register_result=register_model,
    progress_view=progress_view,
    completed_view=lambda job, metrics: {"accuracy": metrics.get("accuracy")},
)
