"""Jobs: the API records a job and sends a message; the dispatcher claims it and starts a container job.

The API never runs heavy work. Guarantees kept here:
- a repeated POST with the same Idempotency-Key returns the same job;
- a job the queue never heard of is not left `queued`: a failed send removes it (503), and the sweeper
  re-sends messages for jobs queued too long (a crash between insert and send);
- a message delivered twice starts one run (the claim is one atomic update);
- at most `max_running` jobs of a kind run per user; others wait in `queued`.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from bson import ObjectId

from stratus.adapters.job_env import MAX_INLINE_PARAMS, encode_params, params_key
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.jobs import JobEventRepository, JobRepository
from stratus.errors import Conflict, DomainError, InvalidInput, NotFound, ServiceUnavailable
from stratus.jobs.kinds import START_MESSAGE, JobKinds
from stratus.jobs.lifecycle import ACTIVE, RUNNING, JobEvent, is_terminal
from stratus.jobs.store import JobStore
from stratus.ports.jobs import JobBackend, JobHandle, JobSpec
from stratus.ports.queue import MessageQueue
from stratus.ports.storage import ObjectStorage
from stratus.schemas.common import utcnow

log = logging.getLogger(__name__)

SERVER_RESTARTED = "The server restarted while the job was running"


@dataclass(frozen=True)
class JobPolicy:
    max_running_per_user: int = 5  # seed 001: 5 concurrent training jobs per user
    cap_retry_delay_s: int = 30
    requeue_after_s: int = 120  # a job still `queued` after this without a claim gets its message again
    heartbeat_timeout_s: int = 600  # a running job silent for this long is asked about, then failed


@dataclass(frozen=True)
class Reconciled:
    ended: list[dict[str, Any]]  # the jobs it ended, as they are now (failed, or stopped if asked to)
    requeued: int  # queued jobs whose start message was sent again


class JobService:
    def __init__(
        self,
        *,
        jobs: JobRepository,
        store: JobStore,
        events: JobEventRepository,
        kinds: JobKinds,
        datasets: DatasetRepository,
        queue: MessageQueue,
        backend: JobBackend,
        storage: ObjectStorage,
        policy: JobPolicy,
        worker_env: Mapping[str, str] | None = None,
    ) -> None:
        self._jobs = jobs
        self._store = store
        self._events = events
        self._kinds = kinds
        self._datasets = datasets
        self._queue = queue
        self._backend = backend
        self._storage = storage
        # What every container job needs to reach its storage and event bus (set by the composition root).
        self._worker_env = dict(worker_env or {})
        self.policy = policy

    # --- creating -------------------------------------------------------------------------------

    async def create(
        self, doc: dict[str, Any], *, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Record a queued job of any registered kind and send its start message; (job, created now)."""
        self._kinds.get(doc["kind"])  # an unregistered kind is a programming error: fail before recording
        job, created = await self._store.create(doc, idempotency_key=idempotency_key)
        if created:
            await self._send_start(dict(job))
        return dict(job), created

    async def _send_start(self, job: dict[str, Any]) -> None:
        body = {"type": START_MESSAGE, "job_id": str(job["_id"])}
        try:
            await self._queue.send(body)
        except DomainError:
            try:
                await self._queue.send(body)  # one retry: most send failures are momentary
            except DomainError as e:
                # Nobody would ever run it: do not leave a job that says "queued".
                with contextlib.suppress(DomainError):
                    await self._jobs.delete(job["_id"])
                raise ServiceUnavailable("Could not queue the job; nothing was created, please retry") from e

    # --- dispatching (queue consumer) -----------------------------------------------------------

    async def handle_message(self, body: Mapping[str, Any]) -> None:
        job_id = body.get("job_id")
        if not isinstance(job_id, str) or not ObjectId.is_valid(job_id):
            raise InvalidInput(f"job.start message without a valid job_id: {body!r}")
        await self.dispatch(ObjectId(job_id))

    async def dispatch(self, job_id: ObjectId) -> None:
        job = await self._jobs.get(job_id)
        if job is None or job["status"] != "queued":
            return  # already started, stopped, or gone: a duplicate delivery does nothing
        if await self._jobs.count_running(job["user_id"], job["kind"]) >= self.policy.max_running_per_user:
            await self._wait_for_a_slot(job_id)
            return
        claimed = await self._store.apply(job_id, JobEvent.CLAIM, changes={"claimed_at": utcnow()})
        if claimed is None:
            return  # another delivery claimed it first
        # Count again now that this job holds a slot: concurrent dispatches can all pass the first check.
        if (
            await self._jobs.count_running(claimed["user_id"], claimed["kind"])
            > self.policy.max_running_per_user
        ):
            if await self._store.apply(job_id, JobEvent.RELEASE):
                await self._wait_for_a_slot(job_id)
            return
        kind = self._kinds.get(claimed["kind"])
        spec = JobSpec(
            job_id=str(job_id),
            kind=kind.name,
            params=claimed["params"],
            output_prefix=f"users/{claimed['user_id']}/jobs/{job_id}",
            max_runtime_s=kind.resources.max_runtime_s,
            gpu=kind.resources.gpu,
            memory_mb=kind.resources.memory_mb,
            env=self._worker_env,
        )
        try:
            if len(encode_params(spec)) > MAX_INLINE_PARAMS:
                await self._storage.put_bytes(
                    params_key(spec), encode_params(spec).encode(), content_type="application/json"
                )
            handle = await self._backend.submit(spec)
        except DomainError as e:
            failed = await self._store.apply(
                job_id,
                JobEvent.SUBMIT_FAILED,
                changes={"error": f"Could not start the job: {e.message}", "completed_at": utcnow()},
            )
            if failed is not None:
                await self._store.log(failed, "status", {"status": "failed", "error": failed.get("error")})
            return
        updated = await self._store.apply(
            job_id,
            JobEvent.SUBMITTED,
            changes={"backend": handle.backend, "external_id": handle.external_id, "heartbeat_at": utcnow()},
        )
        if updated is not None:
            await self._store.log(updated, "status", {"status": updated["status"], "backend": handle.backend})
            if updated["status"] == "stopping":
                # A stop arrived while the job was being submitted (no handle then): deliver it now.
                await self._backend.stop(handle)

    async def _wait_for_a_slot(self, job_id: ObjectId) -> None:
        """Over the per-user cap: stay queued and look again later. Touching the job tells the sweeper
        it is waiting, not lost (so it does not send more messages for it)."""
        await self._store.apply(job_id, JobEvent.WAIT, changes={"waiting_for_slot_at": utcnow()})
        await self._queue.send(
            {"type": START_MESSAGE, "job_id": str(job_id)}, delay_seconds=self.policy.cap_retry_delay_s
        )

    # --- reading and stopping -------------------------------------------------------------------

    async def get(self, user_id: ObjectId, job_id: ObjectId) -> dict[str, Any]:
        job = await self._jobs.get_owned(user_id, job_id)
        if job is None:
            raise NotFound("Job not found")
        return job

    async def owns(self, user_id: ObjectId, job_id: str) -> bool:
        return ObjectId.is_valid(job_id) and await self._jobs.get_owned(user_id, ObjectId(job_id)) is not None

    async def list_owned(
        self, user_id: ObjectId, *, cursor: str | None, limit: int, status: str | None, kind: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        before = ObjectId(cursor) if cursor and ObjectId.is_valid(cursor) else None
        if cursor and before is None:
            raise InvalidInput(
                "cursor is not valid", details=[{"field": "cursor", "message": "not a valid cursor"}]
            )
        items = await self._jobs.list_owned(user_id, before=before, limit=limit + 1, status=status, kind=kind)
        next_cursor = str(items[limit - 1]["_id"]) if len(items) > limit else None
        return items[:limit], next_cursor

    async def events(
        self, user_id: ObjectId, job_id: ObjectId, *, cursor: str | None, limit: int
    ) -> tuple[list[dict[str, Any]], str | None]:
        await self.get(user_id, job_id)
        after = ObjectId(cursor) if cursor and ObjectId.is_valid(cursor) else None
        items = await self._events.list_for(job_id, after=after, limit=limit + 1)
        next_cursor = str(items[limit - 1]["_id"]) if len(items) > limit else None
        return items[:limit], next_cursor

    async def stop(self, user_id: ObjectId, job_id: ObjectId) -> dict[str, Any]:
        job = await self.get(user_id, job_id)
        if is_terminal(job["status"]):
            raise Conflict(f"Job already finished (status: {job['status']})", code="JOB_FINISHED")
        now = utcnow()
        if job["status"] == "queued":
            stopped = await self._store.apply(
                job_id, JobEvent.CANCEL, changes={"completed_at": now, "error": None}
            )
            if stopped is not None:
                await self._store.log(stopped, "status", {"status": "stopped", "reason": "stopped by user"})
                return dict(stopped)
            job = await self.get(user_id, job_id)
        stopping = await self._store.apply(
            job_id, JobEvent.STOP_REQUESTED, changes={"stop_requested_at": now}
        )
        if stopping is None:
            return await self.get(user_id, job_id)
        await self._store.log(stopping, "status", {"status": "stopping"})
        if stopping.get("external_id"):
            await self._backend.stop(JobHandle(stopping["backend"], stopping["external_id"]))
        return dict(stopping)

    # --- sweeping -------------------------------------------------------------------------------

    async def sweep(self) -> int:
        """Re-send start messages for jobs stuck in `queued`; returns how many were re-sent."""
        older = utcnow() - timedelta(seconds=self.policy.requeue_after_s)
        stale = await self._jobs.stale(("queued",), older)
        for job in stale:
            with contextlib.suppress(DomainError):
                await self._queue.send({"type": START_MESSAGE, "job_id": str(job["_id"])})
                await self._store.apply(job["_id"], JobEvent.WAIT, changes={"requeued_at": utcnow()})
        return len(stale)

    # --- restarting -----------------------------------------------------------------------------

    async def reconcile_after_restart(self, *, reason: str = SERVER_RESTARTED) -> Reconciled:
        """For a runtime whose workers and queue lived in the process that just restarted (the local
        one): end its jobs that were starting or running, at once, with `reason` (a job being stopped
        ends `stopped`, as asked), and send the start messages of queued jobs again. Run it before the
        new process consumes its queue, so a job it starts itself is never taken for a lost one; the
        caller announces the ended jobs (event log, live updates, webhooks)."""
        ended: list[dict[str, Any]] = []
        lost = await self._jobs.in_states(RUNNING, backends=(self._backend.name, None))
        for job in lost:
            stopping = job["status"] == "stopping"
            updated = await self._store.apply(
                job["_id"],
                JobEvent.STOPPED if stopping else JobEvent.SERVER_RESTARTED,
                changes={"error": None if stopping else reason, "completed_at": utcnow()},
                where={"status": job["status"]},
            )
            if updated is not None:
                ended.append(dict(updated))
        queued = await self._jobs.in_states(("queued",))
        for job in queued:
            with contextlib.suppress(DomainError):  # the sweeper sends it later
                await self._queue.send({"type": START_MESSAGE, "job_id": str(job["_id"])})
        return Reconciled(ended=ended, requeued=len(queued))


__all__ = ["ACTIVE", "SERVER_RESTARTED", "START_MESSAGE", "JobPolicy", "JobService", "Reconciled"]
