"""Datasets at /api/datasets (seed 003, plus presigned uploads and rows) and /datasets (seed 001)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Query, Request, Response, UploadFile, status

from stratus.api.deps import AppSettings, Datasets
from stratus.api.pagination import MAX_PAGE_SIZE, Offset, PageNumber, Pagination, set_total
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.api.uploads import spool
from stratus.capabilities.datasets.schemas import (
    DatasetPage,
    DatasetPublic,
    DatasetType,
    RowsPage,
    SortBy,
    UploadRequest,
    UploadTicket,
)
from stratus.db.ids import ObjectIdStr, oid
from stratus.settings import Settings

if TYPE_CHECKING:
    # The service is imported when the container builds it (stratus.composition), not with the routes.
    from stratus.capabilities.datasets.service import DatasetService


router = APIRouter(
    prefix="/api/datasets", tags=["datasets"], route_class=StratusRoute, dependencies=[RateLimit]
)
seed001 = APIRouter(prefix="/datasets", tags=["datasets"], route_class=StratusRoute, dependencies=[RateLimit])

FileField = Annotated[UploadFile, File(description="CSV, JSON, JSON Lines or ZIP")]
NameField = Annotated[str | None, Form(min_length=1, max_length=200)]
DescriptionField = Annotated[str | None, Form(max_length=2000)]
TypeField = Annotated[DatasetType | None, Form()]
SortField = Annotated[SortBy, Query(description="name, created_at (uploaded_at) or size")]
OrderField = Annotated[Literal["asc", "desc"], Query()]


async def _upload(
    settings: Settings,
    datasets: DatasetService,
    user: CurrentUser,
    file: UploadFile,
    name: str | None,
    description: str | None,
    dataset_type: str | None,
) -> dict[str, Any]:
    spooled = await spool(file, directory=settings.state_dir / "tmp", max_bytes=settings.max_upload_bytes)
    try:
        return await datasets.upload(
            user.user_id, spooled, name=name, description=description, dataset_type=dataset_type
        )
    finally:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)


@router.post("/upload", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic)
@seed001.post(
    "/upload", status_code=status.HTTP_201_CREATED, response_model=DatasetPublic, include_in_schema=False
)
async def upload_dataset(
    user: CurrentUser,
    settings: AppSettings,
    datasets: Datasets,
    file: FileField,
    name: NameField = None,
    description: DescriptionField = None,
    dataset_type: TypeField = None,
) -> dict[str, Any]:
    """Upload a dataset as multipart form data. Small files are parsed at once (status `ready`); large
    ones are parsed by a worker (status `processing`, then `ready` or `failed` with the reason)."""
    return await _upload(settings, datasets, user, file, name, description, dataset_type)


@router.post("/uploads", status_code=status.HTTP_201_CREATED, response_model=UploadTicket)
async def request_upload(
    body: UploadRequest, user: CurrentUser, datasets: Datasets, request: Request
) -> dict[str, Any]:
    """Start a presigned upload: PUT the file to `upload.url` with `upload.headers`, then POST `complete_url`.
    The bytes go straight to storage, so files over API Gateway's 10 MB payload limit never pass through the API."""
    doc, presigned = await datasets.request_upload(
        user.user_id,
        filename=body.filename,
        size=body.size,
        content_type=body.content_type,
        name=body.name,
        description=body.description,
        dataset_type=body.dataset_type,
    )
    return {
        "dataset": doc,
        "upload": {
            "url": presigned.url,
            "method": presigned.method,
            "headers": presigned.headers,
            "expires_in": presigned.expires_in,
        },
        "complete_url": str(request.url_for("complete_upload", dataset_id=str(doc["_id"]))),
    }


@router.post("/{dataset_id}/complete", status_code=status.HTTP_202_ACCEPTED, response_model=DatasetPublic)
async def complete_upload(dataset_id: ObjectIdStr, user: CurrentUser, datasets: Datasets) -> dict[str, Any]:
    """Confirm a presigned upload; the dataset moves to `processing`."""
    return await datasets.complete_upload(user.user_id, oid(dataset_id, what="Dataset"))


@router.get("", response_model=list[DatasetPublic])
async def list_datasets(
    user: CurrentUser,
    datasets: Datasets,
    page: Pagination,
    response: Response,
    sort_by: SortField = "created_at",
    order: OrderField = "desc",
) -> list[dict[str, Any]]:
    """Newest first by default; `limit`/`offset` or `page`/`limit`. The total is in `X-Total-Count`."""
    items, total = await datasets.list_owned(
        user.user_id, sort_by=sort_by, descending=order == "desc", limit=page.limit, offset=page.offset
    )
    set_total(response, total)
    return items


@seed001.get("", response_model=DatasetPage, include_in_schema=False)
async def list_datasets_paged(
    user: CurrentUser,
    datasets: Datasets,
    page: PageNumber = 1,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 10,
    sort_by: SortField = "created_at",
    order: OrderField = "desc",
) -> dict[str, Any]:
    offset = (page - 1) * limit
    items, total = await datasets.list_owned(
        user.user_id, sort_by=sort_by, descending=order == "desc", limit=limit, offset=offset
    )
    return {"total": total, "page": page, "limit": limit, "offset": offset, "datasets": items}


@router.get("/{dataset_id}", response_model=DatasetPublic)
@seed001.get("/{dataset_id}", response_model=DatasetPublic, include_in_schema=False)
async def get_dataset(dataset_id: ObjectIdStr, user: CurrentUser, datasets: Datasets) -> dict[str, Any]:
    return await datasets.get(user.user_id, oid(dataset_id, what="Dataset"))


@router.get("/{dataset_id}/rows", response_model=RowsPage)
@seed001.get("/{dataset_id}/rows", response_model=RowsPage, include_in_schema=False)
async def dataset_rows(
    dataset_id: ObjectIdStr,
    user: CurrentUser,
    datasets: Datasets,
    offset: Offset = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 100,
) -> dict[str, Any]:
    """A page of parsed rows, as objects keyed by column name."""
    doc, rows = await datasets.rows(user.user_id, oid(dataset_id, what="Dataset"), offset=offset, limit=limit)
    return {
        "dataset_id": dataset_id,
        "offset": offset,
        "limit": limit,
        "total": doc.get("row_count"),
        "rows": rows,
    }


@router.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT)
@seed001.delete("/{dataset_id}", status_code=status.HTTP_204_NO_CONTENT, include_in_schema=False)
async def delete_dataset(dataset_id: ObjectIdStr, user: CurrentUser, datasets: Datasets) -> None:
    """Deletes the record and the stored file. Refused (409) while a training job uses the dataset."""
    await datasets.delete(user.user_id, oid(dataset_id, what="Dataset"))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router, seed001]
