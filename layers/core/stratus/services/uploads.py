"""An uploaded file after it has been received to local disk, and the name we keep for it."""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple


class SpooledUpload(NamedTuple):
    path: Path
    filename: str
    content_type: str | None
    size: int


def safe_filename(name: str | None, default: str = "upload") -> str:
    """The last path component without control or reserved characters: shown to users, used in object keys."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*').strip(" .")
    return cleaned[:200] or default
