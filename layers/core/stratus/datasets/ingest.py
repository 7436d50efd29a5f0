"""Summarise an uploaded dataset in one streaming pass, and read pages of its rows.

Memory stays bounded whatever the file size: CSV goes through the csv module over a text wrapper, in
batches of rows; a JSON array is decoded one object at a time from a sliding buffer; a ZIP is read
member by member straight from the archive. Nothing is ever extracted to disk, and `validate_zip`
judges an archive from its central directory before a single member is decompressed.

Every problem with the content is a 400 whose message starts with the format's phrase ("File must be a
valid CSV file: ...") and says where (the line, the ZIP member), because that is what the user fixes.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
import stat
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from itertools import islice
from pathlib import Path, PurePosixPath
from typing import IO, Any, Literal

from stratus.datasets.formats import INVALID, DatasetFormat
from stratus.datasets.schema import ColumnStats, convert, jsonable
from stratus.errors import InvalidInput, PayloadTooLarge

Kind = Literal["tabular", "images", "text"]
TARGET_NAMES = ("target", "label", "class", "y")  # in order of preference
SUPERVISED_TYPES = frozenset({"classification", "regression"})
TEXT_TYPES = frozenset({"text", "instruction", "chat"})
IMAGE_MAGIC = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
CSV_SUFFIXES = frozenset({".csv"})
DELIMITERS = ",\t;|"  # tried in this order; comma wins whenever it splits the sample consistently
SNIFF_CHARS = 64 * 1024
JSON_CHUNK = 256 * 1024
# Rows per CSV batch shrink as columns grow, so a batch's memory is bounded; small batches stay in
# the CPU cache (measured: 512 rows of 8 columns is ~25% faster than 4096).
CELLS_PER_BATCH = 8192
MAX_BATCH_ROWS = 512
JSON_BUDGET_EVERY = 256  # records between two checks of the row and time budget
ZIP_METHODS = frozenset({zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA})


@dataclass(frozen=True)
class IngestLimits:
    """What an upload may cost to read. ZIP limits are checked on the central directory, up front."""

    max_zip_entries: int = 10_000
    max_zip_uncompressed_bytes: int = 2 * 1024**3
    max_compression_ratio: float = 100
    preview_rows: int = 10
    max_columns: int = 10_000
    # The ratio is judged on a member, and on the whole archive, once it expands to at least this
    # much: a small CSV of repeated values can compress past 100:1 honestly and costs nothing to read.
    ratio_min_bytes: int = 1024 * 1024
    # One JSON object larger than this is refused rather than buffered.
    max_json_record_chars: int = 16 * 1024 * 1024
    # Rows (records, images) a dataset may have, and seconds one parse may take; None: no bound.
    # The product's values come from the settings (STRATUS_DATASET_MAX_ROWS and the parse timeouts).
    max_rows: int | None = None
    max_parse_s: float | None = None


@dataclass
class ColumnInfo:
    """A column's inferred type (integer, float, boolean, datetime or string) and null count."""

    name: str
    type: str
    nulls: int
    non_null: int


@dataclass
class DatasetSummary:
    """Everything one pass learns about a dataset: counts, columns, a preview and the target."""

    format: DatasetFormat
    row_count: int
    column_count: int
    headers: list[str]
    columns: list[ColumnInfo]
    preview_rows: list[list[Any]]
    features: list[str]
    target: str | None
    kind: Kind
    classes: dict[str, int] | None = None  # images per class, for a ZIP of images
    entries: int | None = None  # ZIP members ingested (CSV files or images)

    def to_document(self) -> dict[str, Any]:
        """The summary as the JSON-able fields of a dataset record."""
        return {
            "format": str(self.format),
            "kind": self.kind,
            "row_count": self.row_count,
            "column_count": self.column_count,
            "preview_data": {"headers": list(self.headers), "rows": self.preview_rows},
            "columns": [asdict(c) for c in self.columns],
            "metadata": {
                "rows": self.row_count,
                "columns": self.column_count,
                "features": list(self.features),
                "target": self.target,
                "column_types": {c.name: c.type for c in self.columns},
                "classes": self.classes,
            },
            "entries": self.entries,
        }


# --- sources and errors ----------------------------------------------------------------------------


class ParseTooSlow(PayloadTooLarge):
    """The parse ran past `max_parse_s`. Its own type: the request path hands such a file to a worker."""

    code = "PARSE_TIME_LIMIT"


class _Budget:
    """What one parse may still spend: rows, and time until a deadline. Checked once per batch of rows."""

    def __init__(self, limits: IngestLimits) -> None:
        self.max_rows, self.max_s = limits.max_rows, limits.max_parse_s
        self.deadline = None if self.max_s is None else time.monotonic() + self.max_s
        self.rows = 0

    def spend(self, rows: int) -> None:
        self.rows += rows
        if self.max_rows is not None and self.rows > self.max_rows:
            raise PayloadTooLarge(
                f"The dataset has more than {self.max_rows} rows; at most {self.max_rows} are allowed",
                code="TOO_MANY_ROWS",
            )
        if self.deadline is not None and time.monotonic() >= self.deadline:
            raise ParseTooSlow(
                f"The dataset took more than {self.max_s:g} s to parse (after {self.rows} rows); "
                f"at most {self.max_s:g} s is allowed: split it into smaller files"
            )


@dataclass(frozen=True)
class _Source:
    """One stream of text (the upload, or a member of it) that can be opened again to locate an error."""

    open_binary: Callable[[], IO[bytes]]
    member: str | None = None  # the ZIP member's name, for messages

    def text(self) -> IO[str]:
        # utf-8-sig: a BOM from Excel is dropped; newline="" hands line endings to the csv module.
        return io.TextIOWrapper(self.open_binary(), encoding="utf-8-sig", newline="")

    def invalid(self, fmt: DatasetFormat, reason: str) -> InvalidInput:
        where = f"{self.member}: " if self.member else ""
        return InvalidInput(f"{INVALID[fmt]}: {where}{reason}", code=f"INVALID_{fmt.name}")


def _file_source(path: Path) -> _Source:
    return _Source(lambda: path.open("rb"))


@contextmanager
def _decoding(src: _Source, fmt: DatasetFormat) -> Iterator[None]:
    """Turn a decoding error (found in some buffered chunk) into the line that holds the bad byte."""
    try:
        yield
    except UnicodeDecodeError:
        line, byte = _bad_utf8(src)
        raise src.invalid(
            fmt, f"line {line} is not UTF-8 text (byte 0x{byte:02X}); save it as UTF-8"
        ) from None


def _bad_utf8(src: _Source) -> tuple[int, int]:
    """Line and value of the first byte that is not UTF-8 (0x0A never occurs inside a character)."""
    decoder = codecs.getincrementaldecoder("utf-8-sig")()
    number, line = 0, b""
    with src.open_binary() as binary:
        for number, line in enumerate(binary, 1):
            try:
                decoder.decode(line)
            except UnicodeDecodeError as e:
                return number, line[e.start]
    return number, line[-1] if line else 0  # a character cut short by the end of the file


def _empty(src: _Source) -> InvalidInput:
    if src.member:
        return InvalidInput(f"ZIP member {src.member} is empty", code="EMPTY_FILE")
    return InvalidInput("Dataset file is empty", code="EMPTY_FILE")


# --- CSV -------------------------------------------------------------------------------------------


def _delimiter(src: _Source) -> str:
    """The first delimiter that splits the first lines into the same number (> 1) of fields."""
    with _decoding(src, DatasetFormat.CSV), src.text() as text:
        sample = text.read(SNIFF_CHARS)
    if len(sample) == SNIFF_CHARS:
        sample = sample[: sample.rfind("\n") + 1] or sample
    for delimiter in DELIMITERS:
        reader = csv.reader(io.StringIO(sample, newline=""), delimiter=delimiter)
        try:
            widths = {len(row) for row in islice(filter(None, reader), 20)}
        except csv.Error:
            continue
        if len(widths) == 1 and widths.pop() > 1:
            return delimiter
    return ","


def _column_names(header: list[str], limits: IngestLimits) -> list[str]:
    """Header cells made usable as keys: trimmed, blanks named by position, duplicates numbered."""
    if len(header) > limits.max_columns:
        raise PayloadTooLarge(
            f"The dataset has {len(header)} columns; at most {limits.max_columns} are allowed",
            code="TOO_MANY_COLUMNS",
        )
    names: list[str] = []
    seen: set[str] = set()
    for position, cell in enumerate(header, 1):
        base = cell.replace("\x00", "").strip() or f"column_{position}"  # NUL cannot be stored in BSON
        name, copy = base, 1
        while name in seen:
            copy += 1
            name = f"{base}_{copy}"
        seen.add(name)
        names.append(name)
    return names


def _csv_batches(src: _Source, limits: IngestLimits) -> Iterator[list[list[str]]]:
    """The column names as a batch of one, then batches of records, each as wide as the header."""
    delimiter = _delimiter(src)
    with _decoding(src, DatasetFormat.CSV), src.text() as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        records = filter(None, reader)  # blank lines are empty lists
        try:
            header = next(records, None)
            if header is None:
                raise _empty(src)
            yield [_column_names(header, limits)]
            width, seen = len(header), 1
            size = max(1, min(MAX_BATCH_ROWS, CELLS_PER_BATCH // width))
            while batch := list(islice(records, size)):
                if set(map(len, batch)) != {width}:
                    bad = next(i for i, row in enumerate(batch) if len(row) != width)
                    line = _record_line(src, delimiter, seen + bad)
                    got = len(batch[bad])
                    reason = f"line {line} has {got} field{'' if got == 1 else 's'}, expected {width}"
                    raise src.invalid(DatasetFormat.CSV, reason)
                seen += len(batch)
                yield batch
        except csv.Error as e:
            reason = "a quoted field is never closed" if "end of data" in str(e) else str(e)
            raise src.invalid(DatasetFormat.CSV, f"line {reader.line_num}: {reason}") from None


def _record_line(src: _Source, delimiter: str, index: int) -> int:
    """The line on which record `index` (the header is 0) ends; only read again on the error path."""
    with src.text() as text:
        reader = csv.reader(text, delimiter=delimiter, strict=True)
        next(islice(filter(None, reader), index, None), None)
        return reader.line_num


@dataclass
class _Table:
    """What one pass over the records gathers."""

    headers: list[str] = field(default_factory=list)
    stats: list[ColumnStats] = field(default_factory=list)
    rows: int = 0
    preview: list[list[Any]] = field(default_factory=list)
    classes: dict[str, int] | None = None


def _scan_csv(sources: list[_Source], limits: IngestLimits, budget: _Budget) -> _Table:
    table = _Table()
    for src in sources:
        budget.spend(0)  # many small members: the clock is read per member too
        batches = _csv_batches(src, limits)
        names = next(batches)[0]
        if not table.stats:
            table.headers, table.stats = names, [ColumnStats() for _ in names]
        elif names != table.headers:
            raise src.invalid(
                DatasetFormat.CSV,
                f"its header ({', '.join(names)}) differs from {sources[0].member}'s ({', '.join(table.headers)})",
            )
        for batch in batches:
            budget.spend(len(batch))
            table.rows += len(batch)
            if len(table.preview) < limits.preview_rows:
                table.preview.extend(batch[: limits.preview_rows - len(table.preview)])
            for stats, values in zip(table.stats, zip(*batch, strict=True), strict=True):
                stats.add_many(values)
    types = [s.type for s in table.stats]
    table.preview = [[convert(v, t) for v, t in zip(row, types, strict=True)] for row in table.preview]
    return table


def _csv_page(
    sources: list[_Source], offset: int, limit: int, types: dict[str, str] | None
) -> list[dict[str, Any]]:
    """Whole batches are skipped without building a dict per row, so a deep page is cheap."""
    limits = IngestLimits(max_columns=2**31)  # the file passed `analyse` already
    page: list[dict[str, Any]] = []
    for src in sources:
        batches = _csv_batches(src, limits)
        names = next(batches)[0]
        kinds = [(types or {}).get(n, "string") for n in names]
        for batch in batches:
            if offset >= len(batch):
                offset -= len(batch)
                continue
            for row in batch[offset : offset + limit - len(page)]:
                if types is None:
                    page.append(dict(zip(names, row, strict=True)))
                else:
                    page.append({n: convert(v, t) for n, v, t in zip(names, row, kinds, strict=True)})
            offset = 0
            if len(page) >= limit:
                return page
    return page


# --- JSON and JSON Lines ---------------------------------------------------------------------------

_DECODER = json.JSONDecoder(parse_constant=lambda _: None)  # NaN and Infinity are not JSON: null
_NON_SPACE = re.compile(r"[^ \t\n\r]")


class _JsonBuffer:
    """A sliding window over a JSON text: decoded objects are dropped, so memory is one object's worth."""

    def __init__(self, text: IO[str], src: _Source, limits: IngestLimits) -> None:
        self.text, self.src, self.limits = text, src, limits
        self.buf, self.pos, self.lines_before, self.eof = "", 0, 0, False

    def _fill(self, at_least: int) -> bool:
        self.lines_before += self.buf.count("\n", 0, self.pos)
        self.buf, self.pos = self.buf[self.pos :], 0
        more = self.text.read(max(JSON_CHUNK, at_least))
        self.buf += more
        self.eof = not more
        return bool(more)

    def line(self, at: int | None = None) -> int:
        return self.lines_before + self.buf.count("\n", 0, self.pos if at is None else at) + 1

    def error(self, reason: str, at: int | None = None) -> InvalidInput:
        return self.src.invalid(DatasetFormat.JSON, f"line {self.line(at)}: {reason}")

    def peek(self) -> str:
        """The next character that is not white space ("" at the end), without consuming it."""
        while True:
            match = _NON_SPACE.search(self.buf, self.pos)
            if match:
                self.pos = match.start()
                return self.buf[self.pos]
            self.pos = len(self.buf)
            if not self._fill(0):
                return ""

    def value(self) -> Any:
        """Decode the value at the cursor, reading more while the window ends inside it."""
        previous = None
        while True:
            try:
                obj, self.pos = _DECODER.raw_decode(self.buf, self.pos)
                return obj
            except json.JSONDecodeError as e:
                # An error that more text does not move is in the file, not at the window's edge
                # (an unterminated string always reports its start, so it only ends at the cap or EOF).
                here = (e.pos - self.pos, e.msg)  # relative to the value: stable when the window slides
                stuck = here == previous and not e.msg.startswith("Unterminated string")
                if self.eof or stuck:
                    raise self.error(e.msg, e.pos) from None
                if len(self.buf) - self.pos > self.limits.max_json_record_chars:
                    raise PayloadTooLarge(
                        f"A JSON object at line {self.line()} is larger than "
                        f"{self.limits.max_json_record_chars} characters",
                        code="RECORD_TOO_LARGE",
                    ) from None
                previous = here
                self._fill(len(self.buf) - self.pos)  # double the window: linear time overall


def _json_array(src: _Source, limits: IngestLimits) -> Iterator[dict[str, Any]]:
    with _decoding(src, DatasetFormat.JSON), src.text() as text:
        window = _JsonBuffer(text, src, limits)
        if window.peek() != "[":
            raise window.error("expected an array of objects (for one object per line, use JSON Lines)")
        window.pos += 1
        item, closing = 0, window.peek() == "]"
        if closing:
            window.pos += 1
        while not closing:
            char = window.peek()
            if char != "{":
                if char == "":
                    raise window.error("the file ends inside the array")
                raise window.error("trailing comma" if char == "]" else f"item {item + 1} is not an object")
            item += 1
            yield window.value()
            after = window.peek()
            if after == "":
                raise window.error("the file ends inside the array")
            if after not in (",", "]"):
                raise window.error(f"expected ',' or ']' after item {item}")
            closing = after == "]"
            window.pos += 1  # past the comma, or the closing bracket
        if window.peek():
            raise window.error("unexpected data after the array")


def _json_lines(src: _Source) -> Iterator[dict[str, Any]]:
    with _decoding(src, DatasetFormat.JSONL), src.text() as text:
        for number, line in enumerate(text, 1):
            if not line.strip():
                continue
            try:
                obj = _DECODER.decode(line)
            except json.JSONDecodeError as e:
                column = min(e.pos, len(line.rstrip("\r\n"))) + 1  # not past the end of the line
                raise src.invalid(DatasetFormat.JSONL, f"line {number}: {e.msg} (column {column})") from None
            if not isinstance(obj, dict):
                raise src.invalid(DatasetFormat.JSONL, f"line {number} is not a JSON object")
            yield obj


def _json_records(src: _Source, fmt: DatasetFormat, limits: IngestLimits) -> Iterator[dict[str, Any]]:
    return _json_array(src, limits) if fmt is DatasetFormat.JSON else _json_lines(src)


def _scan_json(src: _Source, fmt: DatasetFormat, limits: IngestLimits, budget: _Budget) -> _Table:
    columns: dict[str, ColumnStats] = {}
    table, preview = _Table(), list[dict[str, Any]]()
    for record in _json_records(src, fmt, limits):
        table.rows += 1
        if table.rows % JSON_BUDGET_EVERY == 0:
            budget.spend(JSON_BUDGET_EVERY)
        if len(preview) < limits.preview_rows:
            preview.append(record)
        for key, value in record.items():
            stats = columns.get(key)
            if stats is None:
                if len(columns) >= limits.max_columns:
                    raise PayloadTooLarge(
                        f"The dataset has more than {limits.max_columns} distinct keys",
                        code="TOO_MANY_COLUMNS",
                    )
                stats = columns[key] = ColumnStats()
            stats.add(value)
    budget.spend(table.rows % JSON_BUDGET_EVERY)
    table.headers, table.stats = list(columns), list(columns.values())
    table.preview = [[jsonable(r.get(h)) for h in table.headers] for r in preview]
    return table


# --- ZIP -------------------------------------------------------------------------------------------


def _zip_error(reason: str) -> InvalidInput:
    return InvalidInput(f"{INVALID[DatasetFormat.ZIP]}: {reason}", code="INVALID_ZIP")


def _unsafe_name(name: str) -> str | None:
    """Why a member name could write outside the folder it is extracted into, if it could."""
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"[A-Za-z]:", posix):
        return "has an absolute path"
    if ".." in posix.split("/"):
        return "leaves the archive's folder (..)"
    return None


def expanded_size(infos: list[zipfile.ZipInfo]) -> int:
    """Bytes the archive's members decompress to, as its central directory says (reading stops there)."""
    return sum(info.file_size for info in infos)


def validate_zip(path: Path, limits: IngestLimits) -> list[zipfile.ZipInfo]:
    """Refuse an unsafe archive from its central directory alone; nothing is decompressed or written."""
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError) as e:
        raise _zip_error(str(e) or "unreadable archive") from None
    if len(infos) > limits.max_zip_entries:
        raise _zip_error(f"it has {len(infos)} entries; at most {limits.max_zip_entries} are allowed")
    total = 0
    for info in infos:
        name = info.filename
        if problem := _unsafe_name(name):
            raise _zip_error(f"entry {name!r} {problem}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise _zip_error(f"entry {name!r} is a symbolic link")
        if info.flag_bits & 0x1:
            raise _zip_error(f"entry {name!r} is encrypted")
        if info.compress_type not in ZIP_METHODS:
            raise _zip_error(f"entry {name!r} uses an unsupported compression method")
        total += info.file_size
        if total > limits.max_zip_uncompressed_bytes:
            raise _zip_error(
                f"it expands to more than {limits.max_zip_uncompressed_bytes} bytes (a decompression bomb?)"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= limits.ratio_min_bytes and ratio > limits.max_compression_ratio:
            raise _zip_error(
                f"entry {name!r} expands {ratio:.0f} times; at most {limits.max_compression_ratio:g} "
                "is allowed (a decompression bomb?)"
            )
    # Many members each just under ratio_min_bytes pass the check above one by one (500 x 1 MB of
    # repeated text is a 0.5 MB upload): the archive as a whole is what a parse has to expand.
    packed = sum(info.compress_size for info in infos)
    ratio = total / max(packed, 1)
    if total >= limits.ratio_min_bytes and ratio > limits.max_compression_ratio:
        raise _zip_error(
            f"it expands {ratio:.0f} times ({total} bytes from {packed}); at most "
            f"{limits.max_compression_ratio:g} is allowed (a decompression bomb?)"
        )
    return infos


@dataclass
class _Members:
    kind: Literal["images", "csv"]
    infos: list[zipfile.ZipInfo]


def _classify(infos: list[zipfile.ZipInfo]) -> _Members:
    """The CSV files or the images of the archive, by name; macOS metadata and dotfiles are ignored."""
    images, tables = [], []
    for info in infos:
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or not parts or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            continue
        suffix = PurePosixPath(parts[-1]).suffix.lower()
        if suffix in IMAGE_SUFFIXES:
            images.append(info)
        elif suffix in CSV_SUFFIXES:
            tables.append(info)
    if images and tables:
        raise _zip_error("it holds both images and CSV files; upload one kind per dataset")
    if not images and not tables:
        raise _zip_error("it holds no CSV files and no images (png, jpg, jpeg, gif, bmp, webp)")
    chosen = images or tables
    chosen.sort(key=lambda i: i.filename)
    return _Members("images" if images else "csv", chosen)


def _label(info: zipfile.ZipInfo) -> str:
    parts = PurePosixPath(info.filename.replace("\\", "/")).parts
    if len(parts) < 2:
        raise _zip_error(
            f"image {info.filename!r} is not in a folder; put each class's images in its own folder"
        )
    return parts[-2]


def _is_image(head: bytes) -> bool:
    return head.startswith(IMAGE_MAGIC) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")


@contextmanager
def _archive(path: Path, limits: IngestLimits) -> Iterator[tuple[zipfile.ZipFile, _Members]]:
    """The validated archive and its members; damage found while reading members is a 400 too."""
    members = _classify(validate_zip(path, limits))
    try:
        with zipfile.ZipFile(path) as archive:
            yield archive, members
    # RuntimeError: zipfile's "password required" for an encrypted member, and (a subclass) its error
    # for a compression method it cannot read; validate_zip refuses both first, this covers a member
    # whose local header disagrees with the central directory.
    except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError) as e:
        raise _zip_error(str(e)) from None


def _member_sources(archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> list[_Source]:
    def opener(info: zipfile.ZipInfo) -> Callable[[], IO[bytes]]:
        return lambda: archive.open(info)

    return [_Source(opener(info), member=info.filename) for info in infos]


def _scan_images(
    archive: zipfile.ZipFile, infos: list[zipfile.ZipInfo], limits: IngestLimits, budget: _Budget
) -> _Table:
    classes: Counter[str] = Counter()
    table = _Table(headers=["path", "label"], stats=[ColumnStats(), ColumnStats()])
    for info in infos:
        budget.spend(1)
        label = _label(info)
        with archive.open(info) as member:
            if not _is_image(member.read(16)):
                raise _zip_error(f"{info.filename!r} is not an image its name says it is")
        classes[label] += 1
        for stats, value in zip(table.stats, (info.filename, label), strict=True):
            stats.add(value)
        if len(table.preview) < limits.preview_rows:
            table.preview.append([info.filename, label])
    table.rows = len(infos)
    table.classes = dict(sorted(classes.items()))
    return table


# --- the public operations -------------------------------------------------------------------------


def _target(headers: list[str], dataset_type: str | None) -> str | None:
    by_name = {h.lower(): h for h in reversed(headers)}
    for name in TARGET_NAMES:
        if name in by_name:
            return by_name[name]
    if dataset_type in SUPERVISED_TYPES and headers:
        return headers[-1]
    return None


def analyse(
    path: Path, fmt: DatasetFormat, *, dataset_type: str | None = None, limits: IngestLimits = IngestLimits()
) -> DatasetSummary:
    """Count, type and preview a dataset in one streaming pass; any problem with its content is a 400,
    more rows than `limits.max_rows` a 413, a parse longer than `limits.max_parse_s` a `ParseTooSlow`."""
    if path.stat().st_size == 0:
        raise InvalidInput("Dataset file is empty", code="EMPTY_FILE")
    kind: Kind = "text" if dataset_type in TEXT_TYPES else "tabular"
    entries = None
    budget = _Budget(limits)
    if fmt is DatasetFormat.ZIP:
        with _archive(path, limits) as (archive, members):
            entries = len(members.infos)
            if members.kind == "images":
                table, kind = _scan_images(archive, members.infos, limits, budget), "images"
            else:
                table = _scan_csv(_member_sources(archive, members.infos), limits, budget)
    elif fmt is DatasetFormat.CSV:
        table = _scan_csv([_file_source(path)], limits, budget)
    else:
        table = _scan_json(_file_source(path), fmt, limits, budget)
    target = "label" if kind == "images" else _target(table.headers, dataset_type)
    return DatasetSummary(
        format=fmt,
        row_count=table.rows,
        column_count=len(table.headers),
        headers=table.headers,
        columns=[
            ColumnInfo(name, s.type, table.rows - s.non_null, s.non_null)
            for name, s in zip(table.headers, table.stats, strict=True)
        ],
        preview_rows=table.preview,
        features=[h for h in table.headers if h != target],
        target=target,
        kind=kind,
        classes=table.classes,
        entries=entries,
    )


def read_rows(
    path: Path,
    fmt: DatasetFormat,
    *,
    offset: int,
    limit: int,
    column_types: dict[str, str] | None = None,
    limits: IngestLimits = IngestLimits(),
) -> list[dict[str, Any]]:
    """Rows `offset` to `offset + limit` as dicts. CSV values are text, or typed when `column_types`
    (from `analyse`) is given; JSON values are as parsed; images are {"path", "label"}."""
    if offset < 0 or limit < 0:
        raise InvalidInput("offset and limit must not be negative")
    if limit == 0:
        return []
    if fmt is DatasetFormat.ZIP:
        with _archive(path, limits) as (archive, members):
            if members.kind == "images":
                return [
                    {"path": i.filename, "label": _label(i)} for i in members.infos[offset : offset + limit]
                ]
            return _csv_page(_member_sources(archive, members.infos), offset, limit, column_types)
    if fmt is DatasetFormat.CSV:
        return _csv_page([_file_source(path)], offset, limit, column_types)
    records = _json_records(_file_source(path), fmt, limits)
    return [jsonable(r) for r in islice(records, offset, offset + limit)]
