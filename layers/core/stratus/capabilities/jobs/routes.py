"""The general job resource: list (cursor pagination), get, event log, cancel."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from stratus.api.deps import Jobs
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.training.schemas import JobEventPage, JobPage, JobPublic
from stratus.db.ids import ObjectIdStr, oid

router = APIRouter(prefix="/api/jobs", tags=["jobs"], route_class=StratusRoute, dependencies=[RateLimit])

Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor from the previous page")]
Limit = Annotated[int, Query(ge=1, le=200)]


@router.get("", response_model=JobPage)
async def list_jobs(
    user: CurrentUser,
    jobs: Jobs,
    cursor: Cursor = None,
    limit: Limit = 50,
    status: Annotated[str | None, Query(max_length=20)] = None,
    kind: Annotated[str | None, Query(max_length=40)] = None,
) -> dict[str, Any]:
    """Newest first."""
    items, next_cursor = await jobs.list_owned(
        user.user_id, cursor=cursor, limit=limit, status=status, kind=kind
    )
    return {"jobs": items, "next_cursor": next_cursor}


@router.get("/{job_id}", response_model=JobPublic)
async def get_job(job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    return await jobs.get(user.user_id, oid(job_id, what="Job"))


@router.get("/{job_id}/events", response_model=JobEventPage)
async def job_events(
    job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs, cursor: Cursor = None, limit: Limit = 100
) -> dict[str, Any]:
    """Status changes and progress, oldest first."""
    events, next_cursor = await jobs.events(user.user_id, oid(job_id, what="Job"), cursor=cursor, limit=limit)
    return {"events": events, "next_cursor": next_cursor}


@router.post("/{job_id}/cancel", response_model=JobPublic)
async def cancel_job(job_id: ObjectIdStr, user: CurrentUser, jobs: Jobs) -> dict[str, Any]:
    """A queued job is stopped at once; a running one is asked to stop (status `stopping`)."""
    return await jobs.stop(user.user_id, oid(job_id, what="Job"))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
