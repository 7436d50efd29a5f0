"""Seed 001's training API on the job resource: start, status, results, stop."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response, status

from stratus.api.deps import Jobs, Training
from stratus.api.idempotency import IdempotencyKey, started_job
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.identity.principal import Principal
from stratus.capabilities.training.schemas import (
    Seed002TrainingStart,
    Seed002TrainingStarted,
    Seed002TrainingStatus,
    TrainingResults,
    TrainingStart,
    TrainingStarted,
    TrainingStatus,
    TrainingStopped,
)
from stratus.db.ids import ObjectIdStr, oid
from stratus.errors import Conflict
from stratus.schemas.common import utcnow

if TYPE_CHECKING:
    from stratus.jobs.service import JobService

router = APIRouter(prefix="/training", tags=["training"], route_class=StratusRoute, dependencies=[RateLimit])


@router.post("/start", status_code=status.HTTP_201_CREATED, response_model=TrainingStarted)
async def start_training(
    body: TrainingStart,
    user: CurrentUser,
    training: Training,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Queue a training job on a ready dataset. Repeat the request with the same `Idempotency-Key` to get
    the same job back instead of a second one."""
    job = started_job(
        response, await training.start_training(user.user_id, body, idempotency_key=idempotency_key)
    )
    return {
        "job_id": str(job["_id"]),
        "status": job["status"],
        "created_at": job["created_at"],
        "estimated_time": job.get("estimated_time", 0),
    }


def _elapsed(job: dict[str, Any]) -> int:
    started = job.get("started_at")
    if started is None:
        return 0
    end = job.get("completed_at") or utcnow()
    return max(0, int((end - started).total_seconds()))


@router.get("/status/{job_id}", response_model=TrainingStatus)
async def training_status(job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    job = await jobs.get(user.user_id, oid(job_id, what="Job"))
    return {
        "job_id": job_id,
        "status": job["status"],
        "progress": job.get("progress", 0.0),
        "current_epoch": job.get("current_epoch", 0),
        "total_epochs": job.get("total_epochs", 0),
        "metrics": job.get("metrics") or {},
        "started_at": job.get("started_at"),
        "elapsed_time": _elapsed(job),
        "error": job.get("error"),
    }


@router.get("/results/{job_id}", response_model=TrainingResults)
async def training_results(job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    """Final held-out metrics and the per-epoch history; 409 until the job has completed."""
    job = await jobs.get(user.user_id, oid(job_id, what="Job"))
    if job["status"] != "completed":
        raise Conflict(f"Training job has not completed (status: {job['status']})", code="JOB_NOT_COMPLETED")
    return {
        "job_id": job_id,
        "status": job["status"],
        "model_id": str(job["model_id"]) if job.get("model_id") else None,
        "final_metrics": job.get("final_metrics") or {},
        "training_history": job.get("history") or {},
        "baseline": job.get("baseline"),
        "duration": int(job.get("duration_s") or _elapsed(job)),
        "completed_at": job.get("completed_at"),
    }


@router.post("/stop/{job_id}", response_model=TrainingStopped)
async def stop_training(job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    """Ask the job to stop; it checkpoints and ends `stopped`. 409 if it already finished."""
    return await _stop(jobs, user, job_id)


async def _stop(jobs: JobService, user: Principal, job_id: str) -> dict[str, Any]:
    """Seeds 001 and 002 stop a job alike: the job, its state and what it means."""
    job = await jobs.stop(user.user_id, oid(job_id, what="Job"))
    message = (
        "Training job stopped successfully" if job["status"] == "stopped" else "Training job is stopping"
    )
    return {"job_id": job_id, "status": job["status"], "message": message}


# Seed 002's shapes under its /api base: the same jobs, named `task_id`.
seed002 = APIRouter(
    prefix="/api/training", tags=["training"], route_class=StratusRoute, dependencies=[RateLimit]
)


@seed002.post("/start", status_code=status.HTTP_201_CREATED, response_model=Seed002TrainingStarted)
async def start_training_seed002(
    body: Seed002TrainingStart,
    user: CurrentUser,
    training: Training,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Start training on one of your datasets (`dataset_id`, or `dataset_path` as its id or name)."""
    job = started_job(
        response, await training.start_seed002(user.user_id, body, idempotency_key=idempotency_key)
    )
    return {"task_id": str(job["_id"]), "status": job["status"]}


@seed002.get("/status/{task_id}", response_model=Seed002TrainingStatus)
async def training_status_seed002(task_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    job = await jobs.get(user.user_id, oid(task_id, what="Job"))
    metrics = job.get("metrics") or {}
    return {
        "task_id": task_id,
        "status": job["status"],
        "progress": job.get("progress", 0.0),
        "current_epoch": job.get("current_epoch", 0),
        "total_epochs": job.get("total_epochs", 0),
        "current_step": job.get("current_step", 0),
        "total_steps": job.get("total_steps", 0),
        "loss": metrics.get("loss"),
        "learning_rate": metrics.get("learning_rate"),
        "metrics": job.get("final_metrics") or metrics,
        "error": job.get("error"),
    }


@seed002.post("/stop/{task_id}", response_model=TrainingStopped)
async def stop_training_seed002(task_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    return {**await _stop(jobs, user, task_id), "task_id": task_id}


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router, seed002]
