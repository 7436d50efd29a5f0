"""Receiving uploaded files: refuse oversized bodies early, spool the rest to disk in bounded memory."""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path
from typing import IO

from fastapi import Request, UploadFile

from stratus.errors import InvalidInput, PayloadTooLarge
from stratus.services.uploads import SpooledUpload, safe_filename

CHUNK = 1024 * 1024
# Room for the multipart boundaries and the small form fields next to the file.
MULTIPART_OVERHEAD = 64 * 1024


def too_large(max_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"File exceeds the {max_bytes // (1024 * 1024)} MB upload limit; use the presigned upload flow for larger files",
        code="FILE_TOO_LARGE",
        details={"max_bytes": max_bytes},
    )


def check_declared_length(request: Request, max_bytes: int) -> None:
    """A Content-Length over the limit is refused before the body is read."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes + MULTIPART_OVERHEAD:
        raise too_large(max_bytes)


def _open_temp(directory: Path) -> tuple[IO[bytes], Path]:
    directory.mkdir(parents=True, exist_ok=True)
    handle = tempfile.NamedTemporaryFile(dir=directory, prefix="upload-", delete=False)  # noqa: SIM115
    return handle, Path(handle.name)


async def spool(upload: UploadFile, *, directory: Path, max_bytes: int) -> SpooledUpload:
    """Copy the upload to a temporary file, counting bytes; the caller deletes the file."""
    if not upload.filename and upload.size is None:
        raise InvalidInput("file is required", code="FILE_REQUIRED")
    handle, path = await asyncio.to_thread(_open_temp, directory)
    size = 0
    try:
        with handle:
            while chunk := await upload.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise too_large(max_bytes)
                await asyncio.to_thread(handle.write, chunk)
    except BaseException:
        await asyncio.to_thread(path.unlink, missing_ok=True)
        raise
    return SpooledUpload(path, safe_filename(upload.filename), upload.content_type, size)
