"""What each column of a table is: read once, kept with the dataset, used to parse questions."""

from __future__ import annotations

import datetime as dt
import os
import re
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from stratus.analytics import engine

if TYPE_CHECKING:
    import duckdb

Semantic = Literal["quantity", "category", "time", "text", "id"]
FORMATS = engine.FORMATS  # the table formats profile_table and Assistant read
# A text column with at most this many distinct values is a category, and its values are recorded.
CATEGORY_MAX = 100
NUMERIC = {
    "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
    "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "DECIMAL", "REAL",
}  # fmt: skip
TEMPORAL = {"DATE", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "TIMESTAMP_NS", "TIMESTAMP_MS", "TIMESTAMP_S"}
ID_NAME = re.compile(r"(?i)(^id$|_id$|^id_|[a-z]Id$|^uuid$|^key$)")
# Values that could be dates: digits with separators, or a month name with a day and year.
DATE_LIKE = re.compile(
    r"^\d{1,4}[-/.]\d{1,2}([-/.]\d{1,4})?([ T]\d{1,2}:\d{2}(:\d{2})?Z?)?$|^[0-9A-Za-z ,]{6,20}\d{4}$"
)


@dataclass
class ColumnProfile:
    """One column: `semantic` is what a question can do with it (sum a quantity, group by a category
    or a time, filter on any); `dtype` is DuckDB's type; `values` lists the distinct values of a
    low-cardinality column (as strings), else None; `date_format` is the strftime format a time
    column's text was written in (None when it was typed in the file, as in Parquet); `min`/`max` are
    numbers for quantities and ISO strings for times."""

    name: str
    semantic: Semantic
    dtype: str
    distinct: int
    values: list[str] | None = None
    date_format: str | None = None
    min: float | str | None = None
    max: float | str | None = None
    nulls: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnProfile:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class DatasetProfile:
    rows: int
    columns: list[ColumnProfile] = field(default_factory=list)

    def column(self, name: str) -> ColumnProfile | None:
        return next((c for c in self.columns if c.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "columns": [c.to_dict() for c in self.columns]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetProfile:
        return cls(rows=int(data["rows"]), columns=[ColumnProfile.from_dict(c) for c in data["columns"]])


def profile_table(path: str | os.PathLike[str], fmt: str = "csv") -> DatasetProfile:
    """Profile the table in `path` (`fmt`: csv, tsv, json, jsonl or parquet): one pass of DuckDB
    queries per column over the loaded table. A file that cannot be read as a table raises
    `TableError` (a ValueError)."""
    conn = engine.connect()
    try:
        engine.load(conn, path, fmt)
        raw = _json_date_formats(conn, path, fmt)
        engine.lock_down(conn)
        profile = profile_loaded(conn)
        for col in profile.columns:
            if col.semantic == "time" and col.date_format is None:
                col.date_format = raw.get(col.name)
        return profile
    finally:
        conn.close()


def _json_date_formats(
    conn: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], fmt: str
) -> dict[str, str]:
    """The text format of the dates DuckDB's JSON reader typed itself, from a sample of the raw text."""
    if fmt.lower() not in {"json", "jsonl"}:
        return {}
    out = {}
    layout = "array" if fmt.lower() == "json" else "newline_delimited"
    for name, dtype in engine.columns(conn):
        if dtype.split("(")[0].upper() not in TEMPORAL:
            continue
        sample = [
            str(r[0])
            for r in conn.execute(
                f"SELECT json ->> ? FROM read_json_objects(?, format = '{layout}') LIMIT 20",
                [name, os.fspath(path)],
            ).fetchall()
            if r[0] is not None
        ]
        for candidate in engine.DATE_FORMATS:
            try:
                for value in sample:
                    dt.datetime.strptime(value, candidate)
            except ValueError:
                continue
            out[name] = candidate
            break
    return out


def profile_loaded(conn: duckdb.DuckDBPyConnection) -> DatasetProfile:
    t = engine.TABLE
    rows = int(engine.scalar(conn, f"SELECT count(*) FROM {t}"))
    out = []
    for name, dtype in engine.columns(conn):
        q = engine.quote(name)
        distinct, nulls = conn.execute(
            f"SELECT count(DISTINCT {q}), count(*) - count({q}) FROM {t}"
        ).fetchone() or (0, 0)
        col = ColumnProfile(name=name, semantic="text", dtype=dtype, distinct=int(distinct), nulls=int(nulls))
        base = dtype.split("(")[0].upper()
        date_format: str | None = None
        if base in NUMERIC:
            col.semantic = "id" if ID_NAME.search(name) and distinct >= 0.9 * (rows - nulls) else "quantity"
            lo, hi = conn.execute(f"SELECT min({q}), max({q}) FROM {t}").fetchone() or (None, None)
            col.min, col.max = _num(lo), _num(hi)
        elif base in TEMPORAL or (date_format := _date_format(conn, name) if base == "VARCHAR" else None):
            if date_format:
                col.date_format = date_format
                engine.convert_dates(conn, {name: date_format})
                col.dtype = dict(engine.columns(conn))[name]
            col.semantic = "time"
            lo, hi = conn.execute(f"SELECT min({q}), max({q}) FROM {t}").fetchone() or (None, None)
            col.min = lo.isoformat() if lo is not None else None
            col.max = hi.isoformat() if hi is not None else None
        elif distinct <= CATEGORY_MAX or base == "BOOLEAN":
            col.semantic = "category"
            col.values = [
                str(v[0])
                for v in conn.execute(
                    f"SELECT DISTINCT CAST({q} AS VARCHAR) AS v FROM {t} WHERE {q} IS NOT NULL ORDER BY v"
                ).fetchall()
            ]
        elif ID_NAME.search(name) or (distinct == rows - nulls and not _has_spaces(conn, name)):
            col.semantic = "id"
        out.append(col)
    return DatasetProfile(rows=rows, columns=out)


def _has_spaces(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    q = engine.quote(name)
    return bool(engine.scalar(conn, f"SELECT count(*) FROM {engine.TABLE} WHERE contains({q}, ' ')"))


def _num(v: Any) -> float | None:
    return None if v is None else float(v)


def _date_format(conn: duckdb.DuckDBPyConnection, name: str) -> str | None:
    """The first of DATE_FORMATS that parses every non-null value of a text column, or None."""
    q, t = engine.quote(name), engine.TABLE
    sample = [r[0] for r in conn.execute(f"SELECT {q} FROM {t} WHERE {q} IS NOT NULL LIMIT 20").fetchall()]
    if not sample or not all(DATE_LIKE.match(str(v).strip()) for v in sample):
        return None
    for fmt in engine.DATE_FORMATS:
        bad = engine.scalar(
            conn, f"SELECT count(*) FROM {t} WHERE {q} IS NOT NULL AND try_strptime({q}, ?) IS NULL", [fmt]
        )
        if bad == 0:
            return fmt
    return None
