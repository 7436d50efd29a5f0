"""API keys (seed 003): created once in full, listed masked, deleted."""

from __future__ import annotations

from fastapi import APIRouter, Response, status

from stratus.api.deps import ApiKeys
from stratus.api.pagination import Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from stratus.db.ids import ObjectIdStr, oid

router = APIRouter(
    prefix="/api/apikeys", tags=["api keys"], route_class=StratusRoute, dependencies=[RateLimit]
)


@router.post("", status_code=status.HTTP_201_CREATED, response_model=ApiKeyCreated)
async def create_api_key(body: ApiKeyCreate, principal: CurrentUser, api_keys: ApiKeys) -> dict[str, object]:
    """The full key is in this response only; store it now."""
    model_id = oid(body.model_id, what="Model") if body.model_id else None
    record, key = await api_keys.create(principal.user_id, name=body.name, model_id=model_id)
    return {**record, "key": key}


@router.get("", response_model=list[ApiKeyPublic])
async def list_api_keys(
    principal: CurrentUser, api_keys: ApiKeys, page: Pagination, response: Response
) -> list[dict[str, object]]:
    items, total = await api_keys.list(principal.user_id, limit=page.limit, offset=page.offset)
    set_total(response, total)
    return items


@router.delete("/{apikey_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_api_key(apikey_id: ObjectIdStr, principal: CurrentUser, api_keys: ApiKeys) -> None:
    await api_keys.delete(principal.user_id, oid(apikey_id, what="API key"))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
