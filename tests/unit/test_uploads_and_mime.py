"""Upload file names and content-based media types."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus.services.mime import detect_mime
from stratus.services.uploads import safe_filename


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("sales_data.csv", "sales_data.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\report.pdf", "report.pdf"),
        ("bad\x00name\n.txt", "badname.txt"),
        ("", "upload"),
        ("..", "upload"),
    ],
)
def test_safe_filename(raw: str, safe: str) -> None:
    assert safe_filename(raw) == safe


@pytest.mark.parametrize(
    ("content", "name", "mime"),
    [
        (b"%PDF-1.4\n%%EOF\n", "x.png", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 32, "x.pdf", "image/png"),
        (b'{"a": [1, 2]}', "data.txt", "application/json"),
        (b"a,b\n1,2\n", "table.csv", "text/csv"),
        (b"just words", "notes", "text/plain"),
        (b"\x00\x01\x02\x03", "blob", "application/octet-stream"),
    ],
)
def test_mime_comes_from_content(tmp_path: Path, content: bytes, name: str, mime: str) -> None:
    path = tmp_path / "f"
    path.write_bytes(content)
    assert detect_mime(path, name) == mime
