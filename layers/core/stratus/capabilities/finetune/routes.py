"""Seed 003's fine-tune job records at /api/finetune: created, listed and updated by the client.

The records are jobs (kind `finetune`, managed by the client; see services/finetune.py), so they
also appear in GET /api/jobs?kind=finetune.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response, status
from fastapi.exceptions import RequestValidationError

from stratus.api.deps import FineTunes
from stratus.api.pagination import Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.finetune import llm_routes
from stratus.capabilities.finetune.schemas import (
    MAX_LOG_CHARS,
    MAX_STEP_CHARS,
    FineTuneCreate,
    FineTunePublic,
    FineTuneStatus,
    FineTuneStatusPatch,
    FineTuneStatusUpdate,
)
from stratus.db.ids import ObjectIdStr, oid

router = APIRouter(
    prefix="/api/finetune", tags=["fine-tuning"], route_class=StratusRoute, dependencies=[RateLimit]
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=FineTunePublic)
async def create_finetune_job(
    body: FineTuneCreate, principal: CurrentUser, finetune: FineTunes
) -> dict[str, Any]:
    """Record a fine-tune job on one of your datasets (404 otherwise); counts in `fine_tune_jobs`."""
    return await finetune.create(principal.user_id, body)


@router.get("", response_model=list[FineTunePublic])
async def list_finetune_jobs(
    principal: CurrentUser, finetune: FineTunes, page: Pagination, response: Response
) -> list[dict[str, Any]]:
    """Newest first; the total is in `X-Total-Count`."""
    items, total = await finetune.list(principal.user_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return items


@router.get("/{job_id}", response_model=FineTunePublic)
async def get_finetune_job(
    job_id: ObjectIdStr, principal: CurrentUser, finetune: FineTunes
) -> dict[str, Any]:
    return await finetune.get(principal.user_id, oid(job_id, what="Fine-tune job"))


@router.patch("/{job_id}/status", response_model=FineTunePublic)
async def update_finetune_status(
    job_id: ObjectIdStr,
    principal: CurrentUser,
    finetune: FineTunes,
    status_update: Annotated[FineTuneStatus | None, Query(description="New status (required)")] = None,
    progress: Annotated[int | None, Query(ge=0, le=100, description="Percent, 0-100")] = None,
    current_step: Annotated[str | None, Query(max_length=MAX_STEP_CHARS)] = None,
    logs: Annotated[str | None, Query(max_length=MAX_LOG_CHARS)] = None,
    model_id: Annotated[ObjectIdStr | None, Query(description="The resulting model")] = None,
    body: FineTuneStatusPatch | None = None,
) -> dict[str, Any]:
    """Seed 003 sends the change as query parameters (`status_update`, `progress`, `current_step`,
    `logs`); the same fields are accepted as a JSON body (`status` or `status_update`). Setting
    `completed` stamps `completed_at`."""
    sent = {
        "status": status_update,
        "progress": progress,
        "current_step": current_step,
        "logs": logs,
        "model_id": model_id,
    }
    fields = {name: value for name, value in sent.items() if value is not None}
    for name, value in (body.model_dump(exclude_unset=True) if body else {}).items():
        if name in fields and fields[name] != value:
            where = "status_update" if name == "status" else name
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("query", where),
                        "msg": f"{where} differs between the query and the body",
                        "input": fields[name],
                    }
                ]
            )
        fields[name] = value
    if fields.get("status") is None:
        raise RequestValidationError(
            [{"type": "missing", "loc": ("query", "status_update"), "msg": "Field required", "input": None}]
        )
    update = FineTuneStatusUpdate.model_validate(fields)
    return await finetune.update_status(principal.user_id, oid(job_id, what="Fine-tune job"), update)


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router, llm_routes.router]
