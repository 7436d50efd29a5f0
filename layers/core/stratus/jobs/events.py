"""Job state and progress events -> the job document, its event log, WebSocket clients and webhooks.

Sources: our worker (progress and result events), the local worker pool, SageMaker's and Batch's
state-change events. Every update is conditional on the job's current status (and, for progress, on
the event's sequence number), so duplicated or late events never move a job backwards. Events for
unknown jobs are logged and dropped: retrying them would never succeed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any, Protocol

from bson import ObjectId

from stratus.adapters.job_env import JOB_STATE_CHANGE
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import DomainError
from stratus.jobs.kinds import JobKinds, JobWebhooks
from stratus.jobs.lifecycle import RUNNING, JobEvent
from stratus.jobs.store import JobStore
from stratus.ports.jobs import JobBackend, JobHandle
from stratus.schemas.common import iso_utc, utcnow

log = logging.getLogger(__name__)

PROGRESS = "Stratus Job Progress"
RESULT = "Stratus Job Result"
SAGEMAKER_STATE = "SageMaker Training Job State Change"
# Not a job event, but it fans out to webhooks the same way (seed 001's dataset.processed).
DATASET_SOURCE = "stratus.datasets"
DATASET_PROCESSED = "dataset.processed"
BATCH_STATE = "Batch Job State Change"

# The EventBridge rules (template.yaml) and the local bus subscribe with this pattern.
EVENT_PATTERN: dict[str, Any] = {
    "$or": [
        {"source": ["stratus.jobs"], "detail-type": [PROGRESS, RESULT, JOB_STATE_CHANGE]},
        {"source": [DATASET_SOURCE], "detail-type": [DATASET_PROCESSED]},
        {"source": ["aws.sagemaker"], "detail-type": [SAGEMAKER_STATE]},
        {"source": ["aws.batch"], "detail-type": [BATCH_STATE]},
    ]
}

_SAGEMAKER_STATES = {
    "InProgress": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Stopped": "stopped",
}
_BATCH_STATES = {"RUNNING": "running", "SUCCEEDED": "completed", "FAILED": "failed"}
# A backend that finished but whose result event never arrived (lost, or the worker died at the end).
RESULT_GRACE = timedelta(minutes=5)


class LivePush(Protocol):
    async def push(self, job_id: str, message: dict[str, Any]) -> int: ...


class WebhookDispatch(Protocol):
    async def dispatch(self, user_id: ObjectId, event: str, data: dict[str, Any]) -> int: ...


class JobEventsService:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        store: JobStore,
        kinds: JobKinds,
        models: ModelRepository,
        backend: JobBackend,
        live: LivePush | None = None,
        webhooks: WebhookDispatch | None = None,
        heartbeat_timeout_s: int = 600,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._kinds = kinds
        self._models = models
        self._backend = backend
        self.live = live
        self.webhooks = webhooks
        self._heartbeat_timeout = timedelta(seconds=heartbeat_timeout_s)

    async def handle(self, envelope: Mapping[str, Any]) -> None:
        detail_type = envelope.get("detail-type")
        detail = envelope.get("detail") or {}
        if detail_type == DATASET_PROCESSED:
            await self._dataset_processed(detail)
            return
        job = await self._find(detail_type, detail)
        if job is None:
            log.warning("dropping %s for an unknown job: %s", detail_type, detail)
            return
        if job.get("managed_by") == "client":
            # Seed 003's fine-tune records are updated by their owner (PATCH), never by workers.
            log.warning("dropping %s for client-managed job %s", detail_type, job["_id"])
            return
        if detail_type == PROGRESS:
            await self._progress(job, detail)
        elif detail_type == RESULT:
            await self._result(job, detail)
        elif detail_type == JOB_STATE_CHANGE:
            await self._state(job, str(detail.get("state")), detail.get("reason"))
        elif detail_type == SAGEMAKER_STATE:
            state = _SAGEMAKER_STATES.get(str(detail.get("TrainingJobStatus")))
            if state:
                await self._state(job, state, detail.get("FailureReason"))
        elif detail_type == BATCH_STATE:
            state = _BATCH_STATES.get(str(detail.get("status")))
            if state:
                await self._state(job, state, detail.get("statusReason"))

    async def _find(self, detail_type: Any, detail: Mapping[str, Any]) -> dict[str, Any] | None:
        if detail_type in (PROGRESS, RESULT, JOB_STATE_CHANGE):
            job_id = detail.get("job_id")
            return (
                await self._jobs.get(ObjectId(job_id))
                if isinstance(job_id, str) and ObjectId.is_valid(job_id)
                else None
            )
        if detail_type == SAGEMAKER_STATE:
            return await self._jobs.find_by_external_id("sagemaker", str(detail.get("TrainingJobName")))
        if detail_type == BATCH_STATE:
            return await self._jobs.find_by_external_id("batch", str(detail.get("jobId")))
        return None

    # --- state changes --------------------------------------------------------------------------

    async def _state(self, job: dict[str, Any], state: str, reason: Any) -> None:
        now = utcnow()
        if state == "running":
            updated = await self._store.apply(
                job["_id"], JobEvent.STARTED, changes={"started_at": now, "heartbeat_at": now}
            )
            if updated is not None:
                await self._announce_status(updated)
                await self._webhook(updated, "started", {"job_id": str(updated["_id"])})
        elif state == "completed":
            # The result event carries the metrics; without it the job is not done yet (see sweep()).
            await self._store.apply(
                job["_id"],
                JobEvent.BACKEND_FINISHED,
                changes={"backend_state": "completed", "backend_completed_at": now},
            )
        elif state in ("failed", "stopped"):
            error = None if state == "stopped" else str(reason or "The job failed")
            event = JobEvent.FAILED if state == "failed" else JobEvent.STOPPED
            updated = await self._store.apply(
                job["_id"], event, changes={"error": error, "completed_at": now}
            )
            if updated is not None:
                await self._announce_status(updated)
                if state == "failed":
                    await self._webhook(updated, "failed", {"job_id": str(updated["_id"]), "error": error})

    async def _progress(self, job: dict[str, Any], detail: Mapping[str, Any]) -> None:
        seq = int(detail.get("seq") or 0)
        progress = float(detail.get("progress") or 0.0)
        decile = int(progress // 10)
        changes: dict[str, Any] = {
            "last_seq": seq,
            "progress": round(progress, 2),
            "current_epoch": int(detail.get("epoch") or 0),
            "total_epochs": int(detail.get("total_epochs") or job.get("total_epochs") or 0),
            "current_step": int(detail.get("step") or 0),
            "total_steps": int(detail.get("total_steps") or 0),
            "metrics": dict(detail.get("metrics") or {}),
            "phase": detail.get("phase"),
            "heartbeat_at": utcnow(),
        }
        if not job.get("started_at"):
            changes["started_at"] = utcnow()
        if decile > int(job.get("progress_decile", -1)):
            changes["progress_decile"] = decile
        if job["status"] not in RUNNING:
            return  # queued (a claim not yet recorded) or finished: nothing to report on
        updated = await self._store.apply(
            job["_id"],
            JobEvent.PROGRESS,
            changes=changes,
            expected=job["status"],
            where={"last_seq": {"$lt": seq}},
        )
        if updated is None:
            return  # a stale or duplicated event, or the job moved on meanwhile
        data = self._progress_data(updated)
        await self._store.log(updated, "progress", data)
        await self._push(updated, {"type": "progress", "data": data})
        if job["status"] == "starting":
            await self._webhook(updated, "started", {"job_id": str(updated["_id"])})
        if "progress_decile" in changes:
            await self._webhook(updated, "progress", data)

    async def _result(self, job: dict[str, Any], detail: Mapping[str, Any]) -> None:
        status = str(detail.get("status"))
        now = utcnow()
        if status != "completed":
            error = None if status == "stopped" else str(detail.get("error") or "The job failed")
            event = JobEvent.FAILED if status == "failed" else JobEvent.STOPPED
            changes: dict[str, Any] = {"error": error, "completed_at": now}
            if detail.get("artifacts"):  # what a stopped or failed job saved (a fine-tune's checkpoints)
                changes["artifacts"] = dict(detail["artifacts"])
            updated = await self._store.apply(job["_id"], event, changes=changes)
            if updated is not None:
                await self._announce_status(updated)
                if updated["status"] == "failed":
                    await self._webhook(updated, "failed", {"job_id": str(updated["_id"]), "error": error})
            return
        final_metrics = dict(detail.get("final_metrics") or {})
        finishing = job["status"] in RUNNING
        if not finishing and not (job["status"] == "completed" and not job.get("model_id")):
            return  # a duplicate result, or the job was stopped or failed first
        # The model first (idempotent per job), then the job: a crash in between is repaired by the
        # redelivered event instead of leaving a completed job without its model.
        kind = self._kinds.find(job.get("kind"))
        model = (
            await kind.register_result(self._models, job, detail)
            if kind is not None and kind.register_result is not None
            else None
        )
        model_id = model["_id"] if model is not None else None
        if not finishing:
            repaired = await self._store.apply(
                job["_id"], JobEvent.RESULT_REPAIRED, changes={"model_id": model_id}, where={"model_id": None}
            )
            if repaired is not None:
                await self._announce_completed(repaired, final_metrics)
            return
        updated = await self._store.apply(
            job["_id"],
            JobEvent.SUCCEEDED,
            changes={
                "model_id": model_id,
                "progress": 100.0,
                "final_metrics": final_metrics,
                "history": dict(detail.get("history") or {}),
                "baseline": dict(detail.get("baseline") or {}),
                "artifacts": dict(detail.get("artifacts") or {}),
                "duration_s": detail.get("duration_s"),
                "completed_at": now,
                "error": None,
            },
        )
        if updated is not None:
            await self._announce_completed(updated, final_metrics)

    async def _announce_completed(self, job: Mapping[str, Any], metrics: dict[str, Any]) -> None:
        await self._announce_status(job)
        data: dict[str, Any] = {"job_id": str(job["_id"])}
        if job.get("model_id"):
            data["model_id"] = str(job["model_id"])
        kind = self._kinds.find(job.get("kind"))
        if kind is not None:
            data |= kind.completed_view(job, metrics)
        await self._webhook(job, "completed", data)

    async def _dataset_processed(self, detail: Mapping[str, Any]) -> None:
        user_id = detail.get("user_id")
        if self.webhooks is None or not isinstance(user_id, str) or not ObjectId.is_valid(user_id):
            return
        data = {k: detail.get(k) for k in ("dataset_id", "status", "error", "row_count")}
        try:
            await self.webhooks.dispatch(ObjectId(user_id), DATASET_PROCESSED, data)
        except DomainError:
            log.warning(
                "could not queue dataset.processed webhooks for %s", detail.get("dataset_id"), exc_info=True
            )

    # --- fan-out --------------------------------------------------------------------------------

    async def announce_ended(self, job: Mapping[str, Any]) -> None:
        """Tell everyone a job ended that no backend event reported (e.g. a restart's reconcile): the
        event log, live subscribers and, for a failure, the owner's webhooks."""
        await self._announce_status(job)
        if job["status"] == "failed":
            await self._webhook(job, "failed", {"job_id": str(job["_id"]), "error": job.get("error")})

    async def _announce_status(self, job: Mapping[str, Any]) -> None:
        data = {"job_id": str(job["_id"]), "status": job["status"], "error": job.get("error")}
        if job.get("model_id"):
            data["model_id"] = str(job["model_id"])
        await self._store.log(job, "status", data)
        await self._push(job, {"type": "error" if job["status"] == "failed" else "status", "data": data})

    async def _push(self, job: Mapping[str, Any], message: dict[str, Any]) -> None:
        if self.live is None:
            return
        try:
            await self.live.push(str(job["_id"]), message)
        except DomainError:
            log.warning("could not push an update for job %s", job["_id"], exc_info=True)

    async def _webhook(self, job: Mapping[str, Any], stage: str, data: dict[str, Any]) -> None:
        """Send the kind's webhook for `stage` (started, progress, completed, failed), if it has one."""
        kind = self._kinds.find(job.get("kind"))
        event = getattr(kind.webhooks if kind else JobWebhooks(), stage)
        if self.webhooks is None or kind is None or event is None:
            return
        data = data | kind.webhook_fields(job)
        try:
            await self.webhooks.dispatch(job["user_id"], event, data)
        except DomainError:
            log.warning("could not queue %s webhooks for job %s", event, job["_id"], exc_info=True)

    def _progress_data(self, job: Mapping[str, Any]) -> dict[str, Any]:
        started = job.get("started_at")
        kind = self._kinds.find(job.get("kind"))
        return {
            "job_id": str(job["_id"]),
            # Events are handled concurrently (here and by Lambda), so updates can arrive out of order:
            # clients order them by `seq`.
            "seq": job.get("last_seq", 0),
            **(kind.progress_view(job) if kind else {"status": job["status"]}),
            "started_at": iso_utc(started) if started else None,
        }

    # --- sweeping -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Fail jobs whose worker went silent or finished without a result; returns how many were ended."""
        ended = 0
        silent_since = utcnow() - self._heartbeat_timeout
        for job in await self._jobs.stale(RUNNING, silent_since):
            reason = await self._silence_reason(job)
            if reason is None:
                continue
            updated = await self._store.apply(
                job["_id"],
                JobEvent.LOST,
                changes={"error": reason, "completed_at": utcnow()},
                where={"updated_at": {"$lt": silent_since}},
            )
            if updated is not None:
                ended += 1
                await self._announce_status(updated)
                await self._webhook(updated, "failed", {"job_id": str(updated["_id"]), "error": reason})
        return ended

    async def _silence_reason(self, job: dict[str, Any]) -> str | None:
        if job.get("backend_state") == "completed":
            return "The worker finished without reporting a result"
        if job.get("external_id"):
            with contextlib.suppress(DomainError):
                status = await self._backend.describe(JobHandle(job["backend"], job["external_id"]))
                if status.state in ("failed", "stopped", "completed"):
                    return status.reason or f"The worker ended ({status.state}) without reporting a result"
        return f"The worker stopped reporting progress for {int(self._heartbeat_timeout.total_seconds())} s"
