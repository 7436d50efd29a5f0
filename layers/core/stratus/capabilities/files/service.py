"""Stored files (seed 004): bytes in object storage, metadata in MongoDB, short-lived download URLs."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from bson import ObjectId

from stratus.db.repositories.files import FileRepository
from stratus.errors import DomainError, InvalidInput, NotFound
from stratus.ports.storage import ObjectStorage
from stratus.services.mime import detect_mime
from stratus.services.uploads import SpooledUpload


class FileService:
    def __init__(self, files: FileRepository, storage: ObjectStorage, *, url_ttl_s: int = 900) -> None:
        self._files = files
        self._storage = storage
        self.url_ttl_s = url_ttl_s

    async def upload(self, user_id: ObjectId, upload: SpooledUpload) -> dict[str, Any]:
        if upload.size == 0:
            raise InvalidInput("File is empty", code="EMPTY_FILE")
        mime = await asyncio.to_thread(detect_mime, upload.path, upload.filename)
        file_id = ObjectId()
        key = f"users/{user_id}/files/{file_id}/{upload.filename}"
        await self._storage.put_file(key, upload.path, content_type=mime)
        try:
            doc = await self._files.insert(
                {
                    "_id": file_id,
                    "user_id": user_id,
                    "filename": upload.filename,
                    "size": upload.size,
                    "mime_type": mime,
                    "object_key": key,
                }
            )
        except BaseException:
            with contextlib.suppress(DomainError):
                await self._storage.delete(key)
            raise
        return await self._with_url(doc)

    async def _with_url(self, doc: dict[str, Any]) -> dict[str, Any]:
        url = await self._storage.presign_get(
            doc["object_key"], expires_in=self.url_ttl_s, filename=doc["filename"]
        )
        return {**doc, "url": url, "url_expires_in": self.url_ttl_s}

    async def get(self, user_id: ObjectId, file_id: ObjectId) -> dict[str, Any]:
        doc = await self._files.get_owned(user_id, file_id)
        if doc is None:
            raise NotFound("File not found")
        return await self._with_url(doc)

    async def list(self, user_id: ObjectId, *, limit: int, offset: int) -> tuple[list[dict[str, Any]], int]:
        items, total = await self._files.list_owned(user_id, limit=limit, offset=offset)
        return [await self._with_url(doc) for doc in items], total

    async def delete(self, user_id: ObjectId, file_id: ObjectId) -> None:
        doc = await self._files.delete_owned(user_id, file_id)
        if doc is None:
            raise NotFound("File not found")
        await self._storage.delete(doc["object_key"])
