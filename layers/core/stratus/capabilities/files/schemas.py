"""Stored files (seed 004)."""

from stratus.schemas.base import Schema
from stratus.schemas.common import PublicModel, UtcDateTime


class FilePublic(PublicModel):
    filename: str
    size: int
    mime_type: str
    url: str
    url_expires_in: int
    created_at: UtcDateTime


class FilePage(Schema):
    files: list[FilePublic]
    total: int
    limit: int
    offset: int
