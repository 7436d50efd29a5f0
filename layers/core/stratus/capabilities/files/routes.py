"""Stored files (seed 004): upload, list, details with a short-lived download URL, delete."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status

from stratus.api.deps import AppSettings, Files
from stratus.api.pagination import Pagination
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.api.uploads import spool
from stratus.capabilities.files.schemas import FilePage, FilePublic
from stratus.db.ids import ObjectIdStr, oid
from stratus.schemas.common import MessageResponse

router = APIRouter(prefix="/api/files", tags=["files"], route_class=StratusRoute, dependencies=[RateLimit])


@router.post("/upload", status_code=status.HTTP_201_CREATED, response_model=FilePublic)
async def upload_file(
    file: Annotated[UploadFile, File()], user: CurrentUser, files: Files, settings: AppSettings
) -> dict[str, Any]:
    """Store a file. `mime_type` is detected from the content, not taken from the client."""
    spooled = await spool(file, directory=settings.state_dir / "tmp", max_bytes=settings.max_upload_bytes)
    try:
        return await files.upload(user.user_id, spooled)
    finally:
        await asyncio.to_thread(spooled.path.unlink, missing_ok=True)


@router.get("", response_model=FilePage)
async def list_files(user: CurrentUser, files: Files, page: Pagination) -> dict[str, Any]:
    items, total = await files.list(user.user_id, limit=page.limit, offset=page.offset)
    return {"files": items, "total": total, "limit": page.limit, "offset": page.offset}


@router.get("/{file_id}", response_model=FilePublic)
async def get_file(file_id: ObjectIdStr, user: CurrentUser, files: Files) -> dict[str, Any]:
    return await files.get(user.user_id, oid(file_id, what="File"))


@router.delete("/{file_id}", response_model=MessageResponse)
async def delete_file(file_id: ObjectIdStr, user: CurrentUser, files: Files) -> MessageResponse:
    await files.delete(user.user_id, oid(file_id, what="File"))
    return MessageResponse(message="File deleted successfully")


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
