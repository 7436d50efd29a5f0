"""Media types from content, never from what the client claims."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import puremagic

SNIFF_BYTES = 64 * 1024
TEXT_TYPES_BY_SUFFIX = {
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".md": "text/markdown",
    ".html": "text/html",
    ".htm": "text/html",
    ".xml": "application/xml",
    ".jsonl": "application/x-ndjson",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".py": "text/x-python",
}


def _is_text(head: bytes) -> bool:
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        # A multi-byte character cut by the sniff window is still text.
        return e.start >= len(head) - 3
    return True


def detect_mime(path: Path, filename: str) -> str:
    with path.open("rb") as f:
        head = f.read(SNIFF_BYTES)
    if head:
        with contextlib.suppress(puremagic.PureError, ValueError):
            mime = puremagic.from_string(head, mime=True)
            if mime:
                return str(mime)
    if not head or not _is_text(head):
        return "application/octet-stream"
    suffix = Path(filename).suffix.lower()
    if suffix == ".json" or head.lstrip()[:1] in (b"{", b"["):
        try:
            json.loads(path.read_bytes() if path.stat().st_size <= SNIFF_BYTES else head)
            return "application/json"
        except ValueError:
            if suffix == ".json":
                return "text/plain"
    return TEXT_TYPES_BY_SUFFIX.get(suffix, "text/plain")
