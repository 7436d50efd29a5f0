"""Seed 003's model records at /api/models: the same registry that training and downloads fill."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from stratus.api.deps import Models
from stratus.api.pagination import Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.models.schemas import ModelCreate, ModelRecordPublic, ModelUpdate
from stratus.capabilities.training.objective import Objective, objective_filter
from stratus.db.ids import ObjectIdStr, oid

router = APIRouter(prefix="/api/models", tags=["models"], route_class=StratusRoute, dependencies=[RateLimit])


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ModelRecordPublic)
async def create_model(body: ModelCreate, principal: CurrentUser, models: Models) -> dict[str, object]:
    fields = body.model_dump()
    if body.dataset_id:
        fields["dataset_id"] = oid(body.dataset_id, what="Dataset")
    return await models.register(principal.user_id, fields)


@router.get("", response_model=list[ModelRecordPublic])
async def list_models(
    principal: CurrentUser,
    models: Models,
    page: Pagination,
    response: Response,
    source: Annotated[
        str | None,
        Query(
            max_length=40, description="user, trained or hub (built-in models: GET /models?source=builtin)"
        ),
    ] = None,
    task: Annotated[str | None, Query(max_length=60)] = None,
    objective: Objective | None = None,
    model_type: Annotated[str | None, Query(max_length=60)] = None,
    model_status: Annotated[str | None, Query(alias="status", max_length=40)] = None,
) -> list[dict[str, object]]:
    wanted = {"source": source, "task": task, "model_type": model_type, "status": model_status}
    filters = {k: v for k, v in wanted.items() if v}
    if objective:
        filters.update(objective_filter(objective))
    items, total = await models.list(principal.user_id, limit=page.limit, offset=page.offset, filters=filters)
    set_total(response, total)
    return items


@router.get("/{model_id}", response_model=ModelRecordPublic)
async def get_model(model_id: ObjectIdStr, principal: CurrentUser, models: Models) -> dict[str, object]:
    return await models.get(principal.user_id, oid(model_id, what="Model"))


@router.patch("/{model_id}", response_model=ModelRecordPublic)
async def update_model(
    model_id: ObjectIdStr, body: ModelUpdate, principal: CurrentUser, models: Models
) -> dict[str, object]:
    changes = body.model_dump(exclude_unset=True)
    return await models.update(principal.user_id, oid(model_id, what="Model"), changes)


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(model_id: ObjectIdStr, principal: CurrentUser, models: Models) -> None:
    await models.delete(principal.user_id, oid(model_id, what="Model"))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
