"""Seed 003's fine-tune job records: jobs a client runs elsewhere and reports on through PATCH.

They are documents of the `jobs` collection, next to training jobs, with `kind: "finetune"` (so
GET /api/jobs?kind=finetune lists them too) and `managed_by: "client"`. The platform never runs
them; seed 002's LoRA fine-tuning will add `kind: "finetune"` jobs with `managed_by: "platform"`
that the job pipeline drives.

Status mapping. The client's status is stored as sent, in `status`; the schema only admits seed
003's vocabulary (FINETUNE_STATUSES), and that vocabulary shares nothing with the statuses the job
pipeline acts on (stratus.jobs.lifecycle.ACTIVE):

    client (seed 003)   stored `status`   what the pipeline does with it
    preparing           preparing         nothing: not an active state
    training            training          nothing: not an active state
    completed           completed         nothing: terminal, same meaning as a finished job
    failed              failed            nothing: terminal, same meaning as a failed job

So the dispatcher (claims `queued` only), both sweepers (`queued`; `starting`/`running`/`stopping`),
the per-user running cap and the dataset-in-use check never see these records, and a value such as
"running" or "queued" is refused with a 422 before it could reach the collection. Every read and
write here also matches `kind`, `managed_by` and the owner, so this API can never show or change a
training job, and PATCH can never change a platform-managed fine-tune.

Platform-managed fine-tunes (seed 002's LoRA/QLoRA jobs, `managed_by: "platform"`) are listed and read
here too, in seed 003's shape, their status following the pipeline by itself (`platform_view`):
queued/starting -> preparing, running/stopping -> training, then completed, failed or stopped.

`completed_at` (seed 003: "when status is set to completed"): stamped when a record becomes
`completed` (also at creation), kept when `completed` is sent again, cleared when the status moves
away from `completed`. `failed` leaves it null, as the seed names `completed` only.
"""

from __future__ import annotations

import contextlib
from typing import Any

from bson import ObjectId

from stratus.capabilities.finetune.schemas import FINETUNE_STATUSES, FineTuneCreate, FineTuneStatusUpdate
from stratus.db.ids import oid
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.db.repositories.users import UserRepository
from stratus.errors import DomainError, NotFound
from stratus.schemas.common import utcnow

FINETUNE = "finetune"
MANAGED_BY_CLIENT = "client"
COMPLETED = "completed"
JOB_NOT_FOUND = "Fine-tune job not found"

# What makes a jobs document one of these records.
CLIENT_RECORD: dict[str, Any] = {"kind": FINETUNE, "managed_by": MANAGED_BY_CLIENT}
_NOT_COMPLETED = tuple(s for s in FINETUNE_STATUSES if s != COMPLETED)


def is_client_record(job: dict[str, Any]) -> bool:
    return all(job.get(k) == v for k, v in CLIENT_RECORD.items())


PLATFORM_STATUS = {
    "queued": "preparing",
    "starting": "preparing",
    "running": "training",
    "stopping": "training",
}


def platform_view(job: dict[str, Any]) -> dict[str, Any]:
    """A platform-managed fine-tune in seed 003's shape (what the pipeline says, never the client)."""
    if is_client_record(job):
        return job
    status = str(job["status"])
    metrics = job.get("metrics") or {}
    step, total = job.get("current_step", 0), job.get("total_steps", 0)
    if status in ("queued", "starting"):
        current = "Queued" if status == "queued" else "Loading the base model"
    elif status in ("running", "stopping"):
        loss = metrics.get("loss")
        current = f"Training: step {step}/{total}" + (f", loss {loss:.4f}" if isinstance(loss, float) else "")
    else:
        current = status.capitalize()
    return {
        **job,
        "status": PLATFORM_STATUS.get(status, status),
        "pipeline_status": status,
        "progress": int(float(job.get("progress") or 0)),
        "current_step": current,
        "logs": job.get("error") or None,
        "task_id": str(job["_id"]),
    }


class FineTuneRecordService:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        datasets: DatasetRepository,
        models: ModelRepository,
        users: UserRepository,
    ) -> None:
        self._jobs = jobs
        self._datasets = datasets
        self._models = models
        self._users = users

    async def create(self, user_id: ObjectId, request: FineTuneCreate) -> dict[str, Any]:
        """Record a fine-tune job on one of the user's datasets; counts in the user's `fine_tune_jobs`."""
        dataset = await self._datasets.require_owned(user_id, oid(request.dataset_id, what="Dataset"))
        model_id = await self._owned_model(user_id, request.model_id) if request.model_id else None
        doc: dict[str, Any] = {
            "user_id": user_id,
            **CLIENT_RECORD,
            "status": request.status,
            "dataset_id": dataset["_id"],
            "model_id": model_id,
            "base_model": request.base_model,
            "progress": request.progress,
            "current_step": request.current_step,
            "logs": request.logs,
            "completed_at": utcnow() if request.status == COMPLETED else None,
        }
        job, _ = await self._jobs.insert(doc)
        try:
            await self._users.increment(user_id, "fine_tune_jobs")
        except BaseException:
            # Keep the counter and the records in step: no record the counter does not know about.
            with contextlib.suppress(DomainError):
                await self._jobs.delete(job["_id"])
            raise
        return job

    async def get(self, user_id: ObjectId, job_id: ObjectId) -> dict[str, Any]:
        """A client record, or a platform-managed fine-tune in seed 003's shape."""
        job = await self._jobs.get_owned(user_id, job_id)
        if job is None or job.get("kind") != FINETUNE:
            raise NotFound(JOB_NOT_FOUND)
        return platform_view(job)

    async def list(self, user_id: ObjectId, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        """Newest first, with the total: the client's records and the platform's fine-tunes."""
        items, total = await self._jobs.page_owned(
            user_id, match={"kind": FINETUNE}, limit=limit, offset=offset
        )
        return [platform_view(job) for job in items], total

    async def update_status(
        self, user_id: ObjectId, job_id: ObjectId, update: FineTuneStatusUpdate
    ) -> dict[str, Any]:
        """Set the status and whichever of progress, current_step, logs and model_id were sent."""
        # An unknown job (or one the platform runs: only the pipeline moves those) is a 404 before
        # anything is said about a model.
        existing = await self._jobs.get_owned(user_id, job_id)
        if existing is None or not is_client_record(existing):
            raise NotFound(JOB_NOT_FOUND)
        changes = update.model_dump(exclude_unset=True)
        changes["status"] = update.status
        if update.model_id:
            changes["model_id"] = await self._owned_model(user_id, update.model_id)
        owned = {"user_id": user_id, **CLIENT_RECORD}
        job: dict[str, Any] | None
        if update.status == COMPLETED:
            # Stamp completed_at only on the change to `completed`; a repeat keeps the first stamp.
            job = await self._jobs.update_if(
                job_id,
                from_status=_NOT_COMPLETED,
                changes={**changes, "completed_at": utcnow()},
                where=owned,
            )
            if job is None:
                job = await self._jobs.update_if(
                    job_id, from_status=(COMPLETED,), changes=changes, where=owned
                )
        else:
            job = await self._jobs.update_if(
                job_id,
                from_status=FINETUNE_STATUSES,
                changes={**changes, "completed_at": None},
                where=owned,
            )
        if job is None:
            raise NotFound(JOB_NOT_FOUND)
        return job

    async def _owned_model(self, user_id: ObjectId, model_id: str) -> ObjectId:
        model = await self._models.get_owned(user_id, oid(model_id, what="Model"))
        if model is None:
            raise NotFound("Model not found")
        return ObjectId(model["_id"])
