"""Which dataset format an upload is, judged from its first bytes.

Content decides, because file names and Content-Type headers are whatever the client says. The claim
is still used twice: to break the one real tie (a line-delimited `{...}` head could be one JSON object
or JSON Lines) and to choose the error: a client that said "CSV" and sent a PNG made a mistake in the
file (400), a client that sent a PDF without claiming anything sent something we do not take (415).
"""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import PurePosixPath

from stratus.errors import InvalidInput, UnsupportedMediaType


class DatasetFormat(StrEnum):
    CSV = "csv"
    JSON = "json"
    JSONL = "jsonl"
    ZIP = "zip"


UTF8_BOM = b"\xef\xbb\xbf"
ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a local file header, or the end record of an empty archive
UNSUPPORTED = "Unsupported dataset format{what}; upload CSV, JSON, JSON Lines or ZIP"
# Binary formats people try to upload as datasets, named so the 415 says what we saw. These magic
# numbers are not UTF-8, so no text file starts with one.
BINARY_MAGIC = {
    b"\x89PNG\r\n\x1a\n": "PNG image",
    b"\xff\xd8\xff": "JPEG image",
    b"\x1f\x8b": "gzip archive",
    b"\xfd7zXZ\x00": "xz archive",
    b"7z\xbc\xaf\x27\x1c": "7-Zip archive",
    b"\xd0\xcf\x11\xe0": "legacy Office document",
}
# These are printable, and a CSV header could start with "PAR1,PAR2": they only name what is binary.
TEXT_LIKE_MAGIC = {
    b"%PDF-": "PDF document",
    b"GIF87a": "GIF image",
    b"GIF89a": "GIF image",
    b"BZh": "bzip2 archive",
    b"Rar!": "RAR archive",
    b"PAR1": "Parquet file",
    b"SQLite format 3": "SQLite database",
}
CLAIMS = {
    DatasetFormat.ZIP: {".zip", "application/zip", "application/x-zip-compressed"},
    DatasetFormat.JSONL: {
        ".jsonl",
        ".ndjson",
        "application/x-ndjson",
        "application/jsonl",
        "application/jsonlines",
    },
    DatasetFormat.JSON: {".json", "application/json"},
    DatasetFormat.CSV: {".csv", ".tsv", "text/csv", "text/tab-separated-values", "application/csv"},
}
# The start of every 400 for a malformed file, by format; the API's clients match on these.
INVALID = {
    DatasetFormat.CSV: "File must be a valid CSV file",
    DatasetFormat.JSON: "File must be valid JSON",
    DatasetFormat.JSONL: "File must be valid JSON Lines",
    DatasetFormat.ZIP: "File must be a valid ZIP archive",
}
# A JSON document opens with `[` then a value, or `{` then a key; "[id],name" is a CSV header.
JSON_START = re.compile(rb'\[\s*(?:[{\["\]\-0-9]|true|false|null)|\{\s*["}]')
CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v\x1b")


def detect_format(filename: str | None, head: bytes, content_type: str | None) -> DatasetFormat:
    """The format of a file from its first bytes (a few KiB is enough), the name and type as hints."""
    claimed = _claimed_format(filename, content_type)
    if head.startswith(ZIP_MAGIC):
        return DatasetFormat.ZIP
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _invalid(claimed or DatasetFormat.CSV, "the file is UTF-16 text; save it as UTF-8")
    binary = _binary_kind(head)
    if binary is not None:
        if claimed is not None:
            raise _invalid(claimed, f"the content is binary ({binary})")
        raise UnsupportedMediaType(UNSUPPORTED.format(what=f" ({binary})"), code="UNSUPPORTED_FORMAT")
    text = head.removeprefix(UTF8_BOM).lstrip()
    if not text:
        raise InvalidInput("Dataset file is empty", code="EMPTY_FILE")
    fmt = _text_format(text, claimed)
    _check_utf8(head, fmt)
    return fmt


def _claimed_format(filename: str | None, content_type: str | None) -> DatasetFormat | None:
    claims = set()
    if filename:
        claims.add(PurePosixPath(filename.replace("\\", "/")).suffix.lower())
    if content_type:
        claims.add(content_type.split(";")[0].strip().lower())
    for fmt, names in CLAIMS.items():
        if claims & names:
            return fmt
    return None


def _binary_kind(head: bytes) -> str | None:
    """What binary thing the head is, or None for text (which may still be in the wrong encoding)."""
    for magic, kind in BINARY_MAGIC.items():
        if head.startswith(magic):
            return kind
    sample = head[:4096]
    reason = None
    if b"\x00" in head:
        reason = "NUL bytes"
    # Text has almost no control characters; compressed or random bytes are about 10% of them.
    elif sample and len(sample) - len(sample.translate(None, CONTROL_BYTES)) > len(sample) // 20:
        reason = "control characters"
    for magic, kind in TEXT_LIKE_MAGIC.items():
        if head.startswith(magic) and (reason or _utf8_error(head) is not None):
            return kind
    return reason


def _utf8_error(head: bytes) -> int | None:
    """Offset of the first byte that is not UTF-8; a character cut by the end of the head is fine."""
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start >= len(head) - 3 and e.reason == "unexpected end of data":
            return None
        return e.start
    return None


def _text_format(text: bytes, claimed: DatasetFormat | None) -> DatasetFormat:
    if not JSON_START.match(text):
        return DatasetFormat.CSV
    if text.startswith(b"["):
        return DatasetFormat.JSON
    # `{`: one object per line is JSON Lines; an object spread over lines is one JSON document.
    first, newline, _ = text.partition(b"\n")
    try:
        one_line_object = isinstance(json.loads(first), dict)
    except ValueError:
        one_line_object = False
    if one_line_object:
        return DatasetFormat.JSONL
    if newline:
        return DatasetFormat.JSON
    # The first line is longer than the head: only the claim can tell, and long lines are JSON Lines.
    return DatasetFormat.JSON if claimed is DatasetFormat.JSON else DatasetFormat.JSONL


def _check_utf8(head: bytes, fmt: DatasetFormat) -> None:
    bad = _utf8_error(head)
    if bad is not None:
        line = head.count(b"\n", 0, bad) + 1
        reason = f"line {line} is not UTF-8 text (byte 0x{head[bad]:02X}); save it as UTF-8"
        raise _invalid(fmt, reason)


def _invalid(fmt: DatasetFormat, reason: str) -> InvalidInput:
    """The 400 for a file that is not the text format it is (or claims to be)."""
    return InvalidInput(f"{INVALID[fmt]}: {reason}", code=f"INVALID_{fmt.name}")
