"""JobStore: the one component that moves jobs. Every writer (the API's job service, the dispatcher,
the event intake, the sweepers, the local runtime's reconcile) names an event from the transition
table; the store turns it into one conditional update of the job document."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, cast

from bson import ObjectId

from stratus.db.repositories.jobs import JobEventRepository, JobRepository
from stratus.jobs.lifecycle import TRANSITIONS, IllegalTransition, JobEvent, JobStatus, next_status
from stratus.jobs.model import Job
from stratus.schemas.common import utcnow


class JobStore:
    def __init__(self, jobs: JobRepository, events: JobEventRepository) -> None:
        self._jobs = jobs
        self._events = events

    async def create(self, doc: dict[str, Any], *, idempotency_key: str | None) -> tuple[Job, bool]:
        """Record a queued job; with an Idempotency-Key this user used before, that job (created=False)."""
        now = utcnow()
        doc = {**doc, "status": JobStatus.QUEUED.value, "queued_at": now}
        if idempotency_key:
            doc["idempotency_key"] = idempotency_key
        job, created = await self._jobs.insert(doc)
        return cast(Job, job), created

    async def apply(
        self,
        job_id: ObjectId,
        event: JobEvent,
        *,
        changes: dict[str, Any] | None = None,
        expected: str | None = None,
        where: dict[str, Any] | None = None,
    ) -> Job | None:
        """Apply `event` to the job if the table allows it from the job's current status (or from
        `expected`, for events whose target depends on where the job is); `changes` are written with it.
        None when the job is elsewhere: it moved on, and a late or repeated event changes nothing."""
        moves = TRANSITIONS[event]
        if expected is not None:
            target = next_status(expected, event)
            if target is None:
                raise IllegalTransition(f"{event.value} does not apply to a {expected} job")
            from_status: tuple[str, ...] = (expected,)
            targets = {target}
        else:
            from_status = tuple(moves)
            targets = set(moves.values())
            if len(targets) > 1 and set(moves.items()) != {(s, s) for s in moves}:
                raise IllegalTransition(f"{event.value} needs the job's current status (expected=)")
        update = dict(changes or {})
        (target,) = targets if len(targets) == 1 else (None,)
        if target is not None:
            update["status"] = target.value
        updated = await self._jobs.update_if(job_id, from_status=from_status, changes=update, where=where)
        return cast(Job | None, updated)

    async def log(self, job: Mapping[str, Any], event_type: str, data: dict[str, Any]) -> None:
        """Append to the job's event log (GET /api/jobs/{id}/events)."""
        await self._events.append(dict(job), event_type, data)
