"""Object storage port (S3 in AWS, a directory locally)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple, Protocol


class ObjectInfo(NamedTuple):
    key: str
    size: int
    content_type: str | None = None
    etag: str | None = None


@dataclass(frozen=True)
class PresignedUpload:
    """Where and how a client PUTs bytes straight to storage, bypassing the API."""

    url: str
    method: str = "PUT"
    headers: dict[str, str] = field(default_factory=dict)
    expires_in: int = 900


class ObjectStorage(Protocol):
    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo: ...

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        """Upload a local file without reading it all into memory."""
        ...

    async def get_bytes(self, key: str) -> bytes:
        """Raises NotFound when the key does not exist."""
        ...

    async def download_to(self, key: str, path: Path) -> None:
        """Stream an object to a local file. Raises NotFound."""
        ...

    def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream an object's bytes. Raises NotFound."""
        ...

    async def head(self, key: str) -> ObjectInfo | None: ...

    async def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""
        ...

    async def delete_prefix(self, prefix: str) -> int: ...

    async def presign_get(self, key: str, *, expires_in: int = 900, filename: str | None = None) -> str: ...

    async def presign_put(
        self, key: str, *, expires_in: int = 900, content_type: str | None = None
    ) -> PresignedUpload: ...

    async def ping(self) -> None:
        """Raise ServiceUnavailable when storage cannot be reached."""
        ...
