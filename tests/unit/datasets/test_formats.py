"""detect_format: content decides, the name and content type only break ties and pick the error."""

from __future__ import annotations

import pytest

from stratus.datasets.formats import DatasetFormat, detect_format
from stratus.errors import InvalidInput, UnsupportedMediaType

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + b"\x00" * 100


@pytest.mark.parametrize(
    ("filename", "head", "content_type", "expected"),
    [
        ("data.csv", b"a,b\n1,2\n", "text/csv", DatasetFormat.CSV),
        # Content first: a CSV named .json is still CSV, and a name is not needed at all.
        ("data.json", b"a,b\n1,2\n", "application/json", DatasetFormat.CSV),
        (None, b"a;b\n1;2\n", None, DatasetFormat.CSV),
        ("bom.csv", b"\xef\xbb\xbfa,b\n1,2\n", None, DatasetFormat.CSV),
        # "[id],name" opens with a bracket but is no JSON document.
        ("odd.csv", b"[id],name\n1,x\n", None, DatasetFormat.CSV),
        ("x.json", b'  \n[{"a": 1}, {"a": 2}]', None, DatasetFormat.JSON),
        ("x.txt", b'[\n  {\n    "a": 1\n  }\n]\n', None, DatasetFormat.JSON),
        ("x.json", b'\xef\xbb\xbf[{"a": 1}]', None, DatasetFormat.JSON),
        ("x.jsonl", b'{"a": 1}\n{"a": 2}\n', None, DatasetFormat.JSONL),
        # One object per line is JSON Lines whatever the name says.
        ("x.json", b'{"a": 1}\n{"a": 2}\n', "application/json", DatasetFormat.JSONL),
        ("x.json", b'{"a": 1}', None, DatasetFormat.JSONL),
        # An object spread over lines is one JSON document (refused later: not an array).
        ("x.json", b'{\n  "data": [1, 2]\n}\n', None, DatasetFormat.JSON),
        ("x.zip", b"PK\x03\x04\x14\x00\x00\x00", "application/zip", DatasetFormat.ZIP),
        ("data.csv", b"PK\x03\x04\x14\x00\x00\x00", "text/csv", DatasetFormat.ZIP),
        # A UTF-8 character cut by the end of the head is not an encoding error.
        ("cut.csv", "name\nJosé".encode()[:-1], None, DatasetFormat.CSV),
        # Printable magic numbers only count on binary content: these are CSV headers.
        ("cols.csv", b"PAR1,PAR2\n1,2\n", None, DatasetFormat.CSV),
        (None, b"BZh,GIF89a\n1,2\n", None, DatasetFormat.CSV),
    ],
)
def test_detects_the_format_from_content(
    filename: str | None, head: bytes, content_type: str | None, expected: DatasetFormat
) -> None:
    assert detect_format(filename, head, content_type) is expected


def test_a_long_first_line_is_judged_by_the_claim() -> None:
    # GIVEN a head that ends inside the first object (no newline seen yet)
    head = b'{"text": "' + b"x" * 100
    # THEN only the name can tell a minified JSON object from JSON Lines; JSON Lines is the default
    assert detect_format("a.json", head, None) is DatasetFormat.JSON
    assert detect_format("a.jsonl", head, None) is DatasetFormat.JSONL
    assert detect_format(None, head, None) is DatasetFormat.JSONL


@pytest.mark.parametrize(
    ("filename", "content_type"), [("photo.csv", None), ("photo", "text/csv; charset=utf-8")]
)
def test_binary_content_claimed_as_csv_is_an_invalid_csv(filename: str, content_type: str | None) -> None:
    with pytest.raises(
        InvalidInput, match=r"^File must be a valid CSV file: the content is binary \(PNG image\)"
    ):
        detect_format(filename, PNG, content_type)


def test_binary_content_claimed_as_json_is_invalid_json() -> None:
    with pytest.raises(InvalidInput, match=r"^File must be valid JSON Lines: "):
        detect_format("x.jsonl", b"\x00\x01\x02", None)


@pytest.mark.parametrize(
    ("filename", "head", "what"),
    [
        ("doc.pdf", PDF, "PDF document"),
        ("text.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "PDF document"),
        ("anim.gif", b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "GIF image"),
        ("photo.png", PNG, "PNG image"),
        (None, b"\x1f\x8b\x08\x00data", "gzip archive"),
        ("data.parquet", b"PAR1\x15\x04", "Parquet file"),
        ("blob.bin", b"abc\x00def", "NUL bytes"),
        ("noise.bin", bytes(range(1, 32)) * 8, "control characters"),
    ],
)
def test_binary_content_not_claimed_as_text_is_415(filename: str | None, head: bytes, what: str) -> None:
    with pytest.raises(UnsupportedMediaType) as caught:
        detect_format(filename, head, None)
    assert what in caught.value.message
    assert caught.value.message.endswith("upload CSV, JSON, JSON Lines or ZIP")


@pytest.mark.parametrize("head", [b"", b"   \n\n", b"\xef\xbb\xbf", b"\xef\xbb\xbf \r\n"])
def test_empty_or_blank_is_empty(head: bytes) -> None:
    with pytest.raises(InvalidInput, match=r"^Dataset file is empty$"):
        detect_format("x.csv", head, None)


def test_latin1_text_names_the_line() -> None:
    head = "name,city\nAnn,Paris\nJosé,Málaga\n".encode("latin-1")
    with pytest.raises(InvalidInput) as caught:
        detect_format("people.csv", head, "text/csv")
    assert caught.value.message == (
        "File must be a valid CSV file: line 3 is not UTF-8 text (byte 0xE9); save it as UTF-8"
    )


def test_utf16_is_refused_with_advice() -> None:
    head = "a,b\n1,2\n".encode("utf-16")
    with pytest.raises(InvalidInput, match="UTF-16 text; save it as UTF-8"):
        detect_format("x.csv", head, None)
