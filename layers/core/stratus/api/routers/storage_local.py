"""The local stand-in for S3's presigned URLs: GET and PUT on `/storage/{key}`, authorised by signature.

Only the local runtime mounts this router (AWS clients talk to S3 directly). No bearer token is needed,
as with S3: the signature in the URL is the authorisation, bound to the key, the method, the expiry and,
when the URL was issued with them, the download filename or the upload's Content-Type.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus.errors import Forbidden, PayloadTooLarge

DEFAULT_MAX_BYTES = 5 * 1024**3  # S3's single-PUT limit
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/;]')


def build_router(storage: LocalDirectoryStorage, *, max_bytes: int = DEFAULT_MAX_BYTES) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/storage/{key:path}", include_in_schema=False)
    async def download(key: str, request: Request) -> StreamingResponse:
        query = request.query_params
        filename = query.get("filename")
        if not storage.verify(key, "GET", query.get("expires"), query.get("signature"), filename=filename):
            raise Forbidden("Invalid or expired signature")
        info, chunks = await storage.open_stream(key)
        headers = {"Content-Length": str(info.size)}
        if info.etag:
            headers["ETag"] = f'"{info.etag}"'
        if filename:
            headers["Content-Disposition"] = content_disposition(filename)
        return StreamingResponse(
            chunks, media_type=info.content_type or "application/octet-stream", headers=headers
        )

    @router.put("/storage/{key:path}", include_in_schema=False)
    async def upload(key: str, request: Request) -> JSONResponse:
        query = request.query_params
        content_type = request.headers.get("content-type")
        expires, signature = query.get("expires"), query.get("signature")
        # A URL issued with a Content-Type binds it; one issued without accepts any (as S3 does).
        signed = storage.verify(key, "PUT", expires, signature, content_type=content_type) or (
            content_type is not None and storage.verify(key, "PUT", expires, signature)
        )
        if not signed:
            raise Forbidden("Invalid or expired signature")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(max_bytes)
        info = await storage.put_stream(key, _limited(request.stream(), max_bytes), content_type=content_type)
        body: dict[str, Any] = {"key": info.key, "size": info.size, "etag": info.etag}
        return JSONResponse(body, headers={"ETag": f'"{info.etag}"'} if info.etag else None)

    return router


async def _limited(chunks: AsyncIterator[bytes], max_bytes: int) -> AsyncIterator[bytes]:
    """The request body, cut off with PayloadTooLarge past `max_bytes` (Content-Length can be absent)."""
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise _too_large(max_bytes)
        yield chunk


def _too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"Upload exceeds the {max_bytes} byte limit", details={"max_bytes": max_bytes})


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 5987).

    The same header S3Storage asks S3 to send (not imported from there: that module needs boto3).
    """
    name = PurePosixPath(filename.replace("\\", "/")).name or "download"
    fallback = _UNSAFE_FILENAME.sub("_", name.encode("ascii", "replace").decode("ascii").replace("?", "_"))
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"
