"""analyse() and read_rows() on real files: CSV, JSON, JSON Lines and ZIPs of CSVs or images."""

from __future__ import annotations

import io
import json
import tracemalloc
import zipfile
from pathlib import Path

import pytest

from stratus.datasets import ingest
from stratus.datasets.formats import DatasetFormat
from stratus.datasets.ingest import ColumnInfo, IngestLimits, analyse, read_rows
from stratus.errors import InvalidInput, PayloadTooLarge

SALES = (
    "date,product,sales,region\n"
    "2025-01-01,Product A,1000,North\n"
    "2025-01-02,Product B,1500,South\n"
    "2025-01-03,Product C,1200.5,East\n"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32


def write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


def make_zip(tmp_path: Path, entries: dict[str, bytes], name: str = "data.zip") -> Path:
    path = tmp_path / name
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in entries.items():
            archive.writestr(member, data)
    return path


def invalid_message(path: Path, fmt: DatasetFormat) -> str:
    with pytest.raises(InvalidInput) as caught:
        analyse(path, fmt)
    return caught.value.message


# --- CSV ---------------------------------------------------------------------------------------------


def test_csv_summary(tmp_path: Path) -> None:
    summary = analyse(write(tmp_path, "sales.csv", SALES), DatasetFormat.CSV, dataset_type="regression")
    assert (summary.row_count, summary.column_count, summary.kind) == (3, 4, "tabular")
    assert summary.headers == ["date", "product", "sales", "region"]
    assert summary.columns == [
        ColumnInfo("date", "datetime", 0, 3),
        ColumnInfo("product", "string", 0, 3),
        ColumnInfo("sales", "float", 0, 3),
        ColumnInfo("region", "string", 0, 3),
    ]
    # The preview holds values of the column's type; datetimes stay ISO text.
    assert summary.preview_rows[0] == ["2025-01-01", "Product A", 1000.0, "North"]
    # Regression without a column named like a target: the last column is the target.
    assert (summary.target, summary.features) == ("region", ["date", "product", "sales"])
    document = summary.to_document()
    assert json.loads(json.dumps(document)) == document
    assert document["metadata"] == {
        "rows": 3,
        "columns": 4,
        "features": ["date", "product", "sales"],
        "target": "region",
        "column_types": {"date": "datetime", "product": "string", "sales": "float", "region": "string"},
        "classes": None,
    }
    assert document["preview_data"]["headers"] == ["date", "product", "sales", "region"]


@pytest.mark.parametrize(
    ("header", "dataset_type", "target"),
    [
        ("a,Label,b", None, "Label"),  # a column named like a target wins, whatever the type
        ("y,a,target", "classification", "target"),  # "target" is preferred over "y"
        ("a,b,c", "classification", "c"),
        ("a,b,c", "text", None),
        ("a,b,c", None, None),
    ],
)
def test_target_column(tmp_path: Path, header: str, dataset_type: str | None, target: str | None) -> None:
    summary = analyse(
        write(tmp_path, "t.csv", f"{header}\n1,2,3\n"), DatasetFormat.CSV, dataset_type=dataset_type
    )
    assert summary.target == target
    assert summary.features == [h for h in header.split(",") if h != target]


def test_text_dataset_types_are_kind_text(tmp_path: Path) -> None:
    path = write(tmp_path, "t.csv", "prompt,response\nhi,hello\n")
    assert analyse(path, DatasetFormat.CSV, dataset_type="instruction").kind == "text"


def test_nulls_bom_crlf_blank_lines_and_quoted_newlines(tmp_path: Path) -> None:
    data = '\ufeffid,name,score\r\n\r\n1,"Ann\r\nSmith",\r\n2,,3.5\r\n\r\n'
    summary = analyse(write(tmp_path, "x.csv", data.encode()), DatasetFormat.CSV)
    assert summary.headers == ["id", "name", "score"]  # the BOM is not part of the first name
    assert summary.row_count == 2
    assert summary.columns[1:] == [ColumnInfo("name", "string", 1, 1), ColumnInfo("score", "float", 1, 1)]
    assert summary.preview_rows == [[1, "Ann\r\nSmith", None], [2, None, 3.5]]


@pytest.mark.parametrize(("data", "expected"), [("a;b\n1;2\n", ["a", "b"]), ("a\tb\n1\t2\n", ["a", "b"])])
def test_other_delimiters(tmp_path: Path, data: str, expected: list[str]) -> None:
    summary = analyse(write(tmp_path, "x.csv", data), DatasetFormat.CSV)
    assert summary.headers == expected
    assert summary.columns[0].type == "integer"


def test_header_names_are_made_unique(tmp_path: Path) -> None:
    summary = analyse(write(tmp_path, "x.csv", " a ,a,,a\n1,2,3,4\n"), DatasetFormat.CSV)
    assert summary.headers == ["a", "a_2", "column_3", "a_3"]


def test_header_only_has_no_rows(tmp_path: Path) -> None:
    summary = analyse(write(tmp_path, "x.csv", "a,b\n"), DatasetFormat.CSV)
    assert (summary.row_count, summary.column_count, summary.preview_rows) == (0, 2, [])


def test_preview_is_the_first_rows_only(tmp_path: Path) -> None:
    data = "n\n" + "".join(f"{i}\n" for i in range(25))
    summary = analyse(write(tmp_path, "x.csv", data), DatasetFormat.CSV, limits=IngestLimits(preview_rows=4))
    assert summary.row_count == 25
    assert summary.preview_rows == [[0], [1], [2], [3]]


def test_empty_file(tmp_path: Path) -> None:
    assert invalid_message(write(tmp_path, "x.csv", b""), DatasetFormat.CSV) == "Dataset file is empty"
    assert invalid_message(write(tmp_path, "y.csv", "\n\n"), DatasetFormat.CSV) == "Dataset file is empty"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("a,b,c\n1,2,3\n4,5\n", "File must be a valid CSV file: line 3 has 2 fields, expected 3"),
        (
            "a,b,c\n1,2,3\n\n1,2,3\n1,2,3,4\n",
            "File must be a valid CSV file: line 5 has 4 fields, expected 3",
        ),
        ("a,b\n1,2\n3,4\n5\n", "File must be a valid CSV file: line 4 has 1 field, expected 2"),
        ('a,b\n1,"x\ny"\n2\n', "File must be a valid CSV file: line 4 has 1 field, expected 2"),
        (
            'a,b\n1,"never closed\n2,3\n',
            "File must be a valid CSV file: line 3: a quoted field is never closed",
        ),
        ('a,b\n1,"x"y\n', "File must be a valid CSV file: line 2: ',' expected after '\"'"),
    ],
)
def test_malformed_csv_names_the_line(tmp_path: Path, data: str, message: str) -> None:
    assert invalid_message(write(tmp_path, "x.csv", data), DatasetFormat.CSV) == message


def test_ragged_row_deep_in_a_big_file(tmp_path: Path) -> None:
    # GIVEN a ragged row far past the first batch
    data = "a,b,c\n" + "1,2,3\n" * 20_000 + "1,2\n" + "1,2,3\n" * 10
    message = invalid_message(write(tmp_path, "x.csv", data), DatasetFormat.CSV)
    assert message == "File must be a valid CSV file: line 20002 has 2 fields, expected 3"


def test_undecodable_byte_deep_in_a_big_file(tmp_path: Path) -> None:
    # GIVEN a Latin-1 byte long after the first chunk the text wrapper decodes
    data = b"name,city\n" + b"Ann,Paris\n" * 50_000 + "José,Málaga\n".encode("latin-1")
    message = invalid_message(write(tmp_path, "x.csv", data), DatasetFormat.CSV)
    assert (
        message == "File must be a valid CSV file: line 50002 is not UTF-8 text (byte 0xE9); save it as UTF-8"
    )


def test_character_cut_short_at_the_end_of_the_file(tmp_path: Path) -> None:
    message = invalid_message(write(tmp_path, "x.csv", b"name\nJos\xc3"), DatasetFormat.CSV)
    assert message == "File must be a valid CSV file: line 2 is not UTF-8 text (byte 0xC3); save it as UTF-8"


def test_too_many_columns_is_413(tmp_path: Path) -> None:
    path = write(tmp_path, "wide.csv", ",".join(f"c{i}" for i in range(50)) + "\n")
    with pytest.raises(PayloadTooLarge, match="50 columns; at most 10"):
        analyse(path, DatasetFormat.CSV, limits=IngestLimits(max_columns=10))


def peak_heap(path: Path) -> tuple[int, int]:
    """Rows counted, and the most memory Python held at once while analysing the file."""
    tracemalloc.start()
    try:
        rows = analyse(path, DatasetFormat.CSV).row_count
        return rows, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_file(tmp_path: Path) -> None:
    # GIVEN two CSVs of the same shape, one five times the size of the other (~1.4 MB)
    line = "12345,67.25,2024-05-01,some words in a text column,true\n"
    small = write(tmp_path, "small.csv", "a,b,c,d,e\n" + line * 5_000)
    large = write(tmp_path, "large.csv", "a,b,c,d,e\n" + line * 25_000)
    # WHEN both are analysed
    (small_rows, small_peak), (large_rows, large_peak) = peak_heap(small), peak_heap(large)
    # THEN both are counted in full, with the same bounded memory (batches, never the whole file)
    assert (small_rows, large_rows) == (5_000, 25_000)
    assert large_peak < small_peak * 1.25
    assert large_peak < large.stat().st_size / 2


def test_read_rows_pages(tmp_path: Path) -> None:
    data = "id,name\n" + "".join(f"{i},n{i}\n" for i in range(3000))
    path = write(tmp_path, "x.csv", data)
    page = read_rows(path, DatasetFormat.CSV, offset=2500, limit=3)
    assert page == [
        {"id": "2500", "name": "n2500"},
        {"id": "2501", "name": "n2501"},
        {"id": "2502", "name": "n2502"},
    ]
    assert read_rows(path, DatasetFormat.CSV, offset=2999, limit=10) == [{"id": "2999", "name": "n2999"}]
    assert read_rows(path, DatasetFormat.CSV, offset=5000, limit=10) == []
    assert read_rows(path, DatasetFormat.CSV, offset=0, limit=0) == []
    with pytest.raises(InvalidInput):
        read_rows(path, DatasetFormat.CSV, offset=-1, limit=10)


def test_read_rows_with_column_types(tmp_path: Path) -> None:
    path = write(tmp_path, "sales.csv", SALES)
    types = {c.name: c.type for c in analyse(path, DatasetFormat.CSV).columns}
    rows = read_rows(path, DatasetFormat.CSV, offset=2, limit=5, column_types=types)
    assert rows == [{"date": "2025-01-03", "product": "Product C", "sales": 1200.5, "region": "East"}]


# --- JSON and JSON Lines -------------------------------------------------------------------------------


def test_json_array_summary(tmp_path: Path) -> None:
    records = [{"a": 1, "b": "x"}, {"a": 2.5, "c": None}, {"a": 3, "b": "2024-01-01", "label": "pos"}]
    path = write(tmp_path, "x.json", json.dumps(records, indent=2))
    summary = analyse(path, DatasetFormat.JSON, dataset_type="classification")
    assert (summary.row_count, summary.headers) == (3, ["a", "b", "c", "label"])
    # A key missing from a record counts as a null of that column.
    assert summary.columns == [
        ColumnInfo("a", "float", 0, 3),
        ColumnInfo("b", "string", 1, 2),
        ColumnInfo("c", "string", 3, 0),
        ColumnInfo("label", "string", 2, 1),
    ]
    assert summary.preview_rows[0] == [1, "x", None, None]
    assert summary.target == "label"


def test_json_array_streams_across_chunks(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN a window far smaller than the file, and objects larger than the window
    monkeypatch.setattr(ingest, "JSON_CHUNK", 64)
    records = [{"i": i, "text": "w" * (i % 300), "nested": {"k": [i, i + 1]}} for i in range(500)]
    path = write(tmp_path, "x.json", json.dumps(records))
    summary = analyse(path, DatasetFormat.JSON)
    assert summary.row_count == 500
    assert [c.type for c in summary.columns] == ["integer", "string", "string"]
    assert read_rows(path, DatasetFormat.JSON, offset=498, limit=5) == records[498:]


def test_empty_json_array(tmp_path: Path) -> None:
    summary = analyse(write(tmp_path, "x.json", " [ ] \n"), DatasetFormat.JSON)
    assert (summary.row_count, summary.column_count) == (0, 0)


def test_json_nan_and_huge_integers_are_stored_safely(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", '[{"a": NaN, "b": 123456789012345678901234567890}]')
    summary = analyse(path, DatasetFormat.JSON)
    assert summary.preview_rows == [[None, "123456789012345678901234567890"]]
    assert summary.columns[0] == ColumnInfo("a", "string", 1, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            '[{"a": 1},\n {"a": 2,}\n]',
            "File must be valid JSON: line 2: Expecting property name enclosed in double quotes",
        ),
        ('[{"a": 1},\n {"a": 2}\n', "File must be valid JSON: line 3: the file ends inside the array"),
        ('[{"a": 1},\n\n 5]', "File must be valid JSON: line 3: item 2 is not an object"),
        ('[{"a": 1},\n]', "File must be valid JSON: line 2: trailing comma"),
        ('[{"a": 1}\n {"a": 2}]', "File must be valid JSON: line 2: expected ',' or ']' after item 1"),
        ('[{"a": 1}]\n[]', "File must be valid JSON: line 2: unexpected data after the array"),
        ('{\n "data": []\n}', "File must be valid JSON: line 1: expected an array of objects"),
    ],
)
def test_malformed_json_names_the_line(tmp_path: Path, data: str, message: str) -> None:
    assert invalid_message(write(tmp_path, "x.json", data), DatasetFormat.JSON).startswith(message)


def test_malformed_json_deep_in_a_big_file(tmp_path: Path) -> None:
    data = "[\n" + '{"a": 1},\n' * 40_000 + '{"a": tru},\n' + '{"a": 1}\n]'
    message = invalid_message(write(tmp_path, "x.json", data), DatasetFormat.JSON)
    assert message == "File must be valid JSON: line 40002: Expecting value"


def test_json_record_over_the_cap_is_413(tmp_path: Path) -> None:
    path = write(tmp_path, "x.json", '[{"text": "' + "x" * 2_000_000 + '"}]')
    with pytest.raises(PayloadTooLarge, match="larger than 100000 characters"):
        analyse(path, DatasetFormat.JSON, limits=IngestLimits(max_json_record_chars=100_000))


def test_json_lines(tmp_path: Path) -> None:
    data = '{"text": "great film", "label": "pos"}\n\n{"text": "dull", "label": "neg"}\n'
    path = write(tmp_path, "x.jsonl", data)
    summary = analyse(path, DatasetFormat.JSONL)
    assert (summary.row_count, summary.target, summary.features) == (2, "label", ["text"])
    assert read_rows(path, DatasetFormat.JSONL, offset=1, limit=10) == [{"text": "dull", "label": "neg"}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ('{"a": 1}\n{"a": \n', "File must be valid JSON Lines: line 2: Expecting value (column 7)"),
        ('{"a": 1}\n[1, 2]\n', "File must be valid JSON Lines: line 2 is not a JSON object"),
        ('{"a": 1}\n{"a": 1} x\n', "File must be valid JSON Lines: line 2: Extra data (column 10)"),
    ],
)
def test_malformed_json_lines_name_the_line(tmp_path: Path, data: str, message: str) -> None:
    assert invalid_message(write(tmp_path, "x.jsonl", data), DatasetFormat.JSONL) == message


def test_json_lines_not_utf8(tmp_path: Path) -> None:
    path = write(tmp_path, "x.jsonl", b'{"a": 1}\n{"a": "\xff"}\n')
    assert invalid_message(path, DatasetFormat.JSONL).startswith(
        "File must be valid JSON Lines: line 2 is not UTF-8 text (byte 0xFF)"
    )


# --- ZIP contents (the safety checks are in test_zip_safety.py) -------------------------------------------


def test_zip_of_csvs_concatenates_rows(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"b.csv": b"x,y\n3,4.5\n", "a.csv": b"x,y\n1,2\n", "README.md": b"# hi"})
    summary = analyse(path, DatasetFormat.ZIP)
    assert (summary.row_count, summary.entries, summary.kind) == (2, 2, "tabular")
    assert [c.type for c in summary.columns] == ["integer", "float"]
    # Members are read in name order, in analyse and read_rows alike.
    assert summary.preview_rows == [[1, 2.0], [3, 4.5]]
    assert read_rows(path, DatasetFormat.ZIP, offset=1, limit=5) == [{"x": "3", "y": "4.5"}]


def test_zip_csvs_must_share_the_header(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"a.csv": b"x,y\n1,2\n", "sub/b.csv": b"x,z\n1,2\n"})
    assert invalid_message(path, DatasetFormat.ZIP) == (
        "File must be a valid CSV file: sub/b.csv: its header (x, z) differs from a.csv's (x, y)"
    )


def test_zip_csv_errors_name_the_member(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"a.csv": b"x,y\n1,2\n", "b.csv": b"x,y\n1,2\n3\n"})
    assert invalid_message(path, DatasetFormat.ZIP) == (
        "File must be a valid CSV file: b.csv: line 3 has 1 field, expected 2"
    )
    empty = make_zip(tmp_path, {"a.csv": b""}, "empty.zip")
    assert invalid_message(empty, DatasetFormat.ZIP) == "ZIP member a.csv is empty"


def test_zip_of_images_per_class(tmp_path: Path) -> None:
    entries = {
        "pets/cats/1.png": PNG,
        "pets/cats/2.JPG": JPEG,
        "pets/dogs/1.webp": b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        "__MACOSX/pets/cats/._1.png": b"junk",
        "pets/.DS_Store": b"junk",
        "pets/labels.txt": b"ignored",
    }
    path = make_zip(tmp_path, entries)
    summary = analyse(path, DatasetFormat.ZIP)
    assert (summary.kind, summary.row_count, summary.entries) == ("images", 3, 3)
    assert summary.classes == {"cats": 2, "dogs": 1}
    assert (summary.headers, summary.target, summary.features) == (["path", "label"], "label", ["path"])
    assert summary.preview_rows[0] == ["pets/cats/1.png", "cats"]
    assert summary.to_document()["metadata"]["classes"] == {"cats": 2, "dogs": 1}
    assert read_rows(path, DatasetFormat.ZIP, offset=2, limit=10) == [
        {"path": "pets/dogs/1.webp", "label": "dogs"}
    ]


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ({"cats/1.png": b"not really a png"}, "'cats/1.png' is not an image"),
        ({"1.png": PNG}, "image '1.png' is not in a folder"),
        ({"cats/1.png": PNG, "data.csv": b"a\n1\n"}, "both images and CSV files"),
        ({"notes.txt": b"x", "__MACOSX/a.csv": b"a\n1\n"}, "no CSV files and no images"),
    ],
)
def test_unusable_zip_contents(tmp_path: Path, entries: dict[str, bytes], message: str) -> None:
    text = invalid_message(make_zip(tmp_path, entries), DatasetFormat.ZIP)
    assert text.startswith("File must be a valid ZIP archive: ")
    assert message in text


def test_zip_member_with_bad_crc(tmp_path: Path) -> None:
    # GIVEN an archive whose stored bytes were altered after it was written
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr("a.csv", b"x,y\n1,2\n")
    path = write(tmp_path, "x.zip", buffer.getvalue().replace(b"1,2", b"1,3"))
    assert "Bad CRC-32" in invalid_message(path, DatasetFormat.ZIP)


# --- row and time bounds -----------------------------------------------------------------------------


def csv_rows(n: int) -> str:
    return "a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(n))


@pytest.mark.parametrize(
    ("name", "fmt", "data"),
    [
        ("x.csv", DatasetFormat.CSV, csv_rows(1000)),
        ("x.jsonl", DatasetFormat.JSONL, "".join(f'{{"a": {i}}}\n' for i in range(1000))),
        ("x.json", DatasetFormat.JSON, json.dumps([{"a": i} for i in range(1000)])),
    ],
)
def test_row_limit_is_413_naming_the_limit(tmp_path: Path, name: str, fmt: DatasetFormat, data: str) -> None:
    path = write(tmp_path, name, data)
    assert analyse(path, fmt, limits=IngestLimits(max_rows=1000)).row_count == 1000
    with pytest.raises(PayloadTooLarge) as caught:
        analyse(path, fmt, limits=IngestLimits(max_rows=999))
    assert caught.value.code == "TOO_MANY_ROWS"
    assert caught.value.message == "The dataset has more than 999 rows; at most 999 are allowed"


def test_row_limit_counts_every_member_of_a_zip(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"a.csv": csv_rows(600).encode(), "b.csv": csv_rows(600).encode()})
    with pytest.raises(PayloadTooLarge, match="more than 1000 rows"):
        analyse(path, DatasetFormat.ZIP, limits=IngestLimits(max_rows=1000))
    images = make_zip(tmp_path, {f"cats/{i}.png": PNG for i in range(3)}, "images.zip")
    with pytest.raises(PayloadTooLarge, match="more than 2 rows"):
        analyse(images, DatasetFormat.ZIP, limits=IngestLimits(max_rows=2))


@pytest.mark.parametrize(
    ("name", "fmt", "data"),
    [
        ("x.csv", DatasetFormat.CSV, csv_rows(10).encode()),
        ("x.jsonl", DatasetFormat.JSONL, b'{"a": 1}\n'),
        ("x.json", DatasetFormat.JSON, b'[{"a": 1}]'),
        ("x.zip", DatasetFormat.ZIP, None),
    ],
)
def test_parse_time_limit_names_the_limit(
    tmp_path: Path, name: str, fmt: DatasetFormat, data: bytes | None
) -> None:
    # A limit of 0 s has passed by the first check, whatever the machine's speed.
    path = make_zip(tmp_path, {"cats/1.png": PNG}) if data is None else write(tmp_path, name, data)
    with pytest.raises(ingest.ParseTooSlow) as caught:
        analyse(path, fmt, limits=IngestLimits(max_parse_s=0))
    assert isinstance(caught.value, PayloadTooLarge) and caught.value.code == "PARSE_TIME_LIMIT"
    assert "took more than 0 s to parse" in caught.value.message
    assert "at most 0 s is allowed" in caught.value.message
    assert analyse(path, fmt, limits=IngestLimits(max_parse_s=3600)).row_count >= 1
