"""Seed 001's /models: the user's models (trained and registered), their details, predictions, deletion."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request, Response, status

from stratus.api.deps import Downloads, Models, Predictions
from stratus.api.idempotency import IdempotencyKey
from stratus.api.pagination import MAX_PAGE_SIZE, PageNumber
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentPrincipal, CurrentUser, RateLimit
from stratus.capabilities.downloads.schemas import ModelDownloadPublic, ModelDownloadRequest
from stratus.capabilities.models.schemas import (
    PredictRequest,
    PredictResponse,
    RegistryModelDetail,
    RegistryModelPage,
)
from stratus.capabilities.registry.bodies import read_images, read_json
from stratus.capabilities.training.objective import Objective, objective_filter
from stratus.db.ids import ObjectIdStr, oid
from stratus.errors import UnsupportedMediaType
from stratus.ml import catalogue

router = APIRouter(prefix="/models", tags=["models"], route_class=StratusRoute, dependencies=[RateLimit])

SORT_FIELDS = {"created_at": "created_at", "accuracy": "accuracy", "name": "name"}


@router.get("", response_model=RegistryModelPage)
async def list_models(
    user: CurrentUser,
    models: Models,
    page: PageNumber = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
    model_type: Annotated[str | None, Query(max_length=60)] = None,
    source: Annotated[str | None, Query(max_length=40, description="trained, user, or builtin")] = None,
    task: Annotated[str | None, Query(max_length=60)] = None,
    objective: Objective | None = None,
    sort_by: Literal["created_at", "accuracy", "name"] = "created_at",
    order: Literal["asc", "desc"] = "desc",
) -> dict[str, Any]:
    if source == "builtin":
        # The models that ship with the workers (they have names, not ids).
        builtin = [
            {**m.describe(), "id": m.name}
            for m in catalogue.BUILTIN_MODELS
            if (task is None or task in m.tasks)
            and (model_type is None or m.model_type == model_type)
            and objective is None
        ]
        window = builtin[(page - 1) * limit : page * limit]
        return {"total": len(builtin), "page": page, "limit": limit, "models": window}
    filters = {k: v for k, v in {"model_type": model_type, "source": source, "task": task}.items() if v}
    if objective:
        filters.update(objective_filter(objective))
    items, total = await models.list(
        user.user_id,
        limit=limit,
        offset=(page - 1) * limit,
        filters=filters,
        sort=[(SORT_FIELDS[sort_by], -1 if order == "desc" else 1), ("_id", -1 if order == "desc" else 1)],
    )
    return {"total": total, "page": page, "limit": limit, "models": items}


@router.post("/download", status_code=status.HTTP_202_ACCEPTED, response_model=ModelDownloadPublic)
async def download_model(
    body: ModelDownloadRequest,
    user: CurrentUser,
    downloads: Downloads,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Download a Hugging Face Hub model (a container job; progress on `/ws/download/{download_id}`).
    A built-in or already downloaded model answers 200 `available` instead."""
    download, started = await downloads.start(user.user_id, body, idempotency_key=idempotency_key)
    if started:
        response.headers["Location"] = f"/models/download/{download['download_id']}"
    else:
        response.status_code = status.HTTP_200_OK
    return download


@router.get("/download/{download_id}", response_model=ModelDownloadPublic)
async def get_download(download_id: ObjectIdStr, user: CurrentUser, downloads: Downloads) -> dict[str, Any]:
    """A download's state, files and bytes so far, and the model's id once it is registered."""
    return await downloads.get(user.user_id, oid(download_id, what="Download"))


@router.get("/{model_name:path}/info")
async def model_info(model_name: str, user: CurrentUser, downloads: Downloads) -> dict[str, Any]:
    """Task, architecture, parameter count, size, labels, maximum sequence length and status, for a
    built-in or downloaded model (or the state of its download)."""
    return await downloads.info(user.user_id, model_name)


@router.get("/{model_id}", response_model=RegistryModelDetail)
async def get_model(model_id: ObjectIdStr, user: CurrentUser, models: Models) -> dict[str, Any]:
    return await models.get(user.user_id, oid(model_id, what="Model"))


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": PredictRequest.model_json_schema()},
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "image": {"type": "string", "format": "binary", "description": "One image"},
                        "images": {
                            "type": "array",
                            "items": {"type": "string", "format": "binary"},
                            "description": "A batch of images",
                        },
                    },
                }
            },
        },
    }
}


@router.post("/{model_id}/predict", response_model=PredictResponse, openapi_extra=PREDICT_BODY)
async def predict(
    model_id: ObjectIdStr, request: Request, principal: CurrentPrincipal, predictions: Predictions
) -> dict[str, Any]:
    """JSON `input` or a batch of `inputs`: for a tabular model each is a list of feature values in the
    model's feature order, or an object keyed by feature name; for an image model each is a base64
    image. Image models also take multipart `image` (or `images`). API keys bound to this model may call
    it. Counts one query."""
    principal.require_model(model_id)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media == "multipart/form-data":
        images = await read_images(request)
        rows = await predictions.predict_images(principal.user_id, oid(model_id, what="Model"), images)
    elif media in ("", "application/json") or media.endswith("+json"):
        body = await read_json(request, PredictRequest)
        rows = await predictions.predict(principal.user_id, oid(model_id, what="Model"), body.rows())
    else:
        raise UnsupportedMediaType("Content-Type must be application/json or multipart/form-data")
    return {"model_id": model_id, "predictions": rows}


@router.delete("/{model_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_model(model_id: ObjectIdStr, user: CurrentUser, models: Models) -> None:
    await models.delete(user.user_id, oid(model_id, what="Model"))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
