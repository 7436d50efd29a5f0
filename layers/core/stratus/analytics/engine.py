"""The DuckDB side: load one table into an in-memory database, then lock the database down.

The file is read once, by DuckDB's own readers, into the table `data`; then external access (files,
HTTP, attaching databases) is switched off and the configuration is locked, so no query that runs
afterwards (and every query is built by `stratus.analytics.compile` from a typed plan, with values as
parameters) can read another file, install or load an extension, or change a setting back.
CSV columns are read as integers, doubles or text only: dates stay text until the profile's date
format (detected by `stratus.analytics.profile`, one of DATE_FORMATS) converts them, so a question's
dates and the profile's agree.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

TABLE = "data"
# Formats tried, in this order, on text columns whose values look like dates; the first format that
# parses every non-null value wins (so 03/04/2024 is read month first, as in the US).
DATE_FORMATS = (
    "%Y-%m-%d",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%dT%H:%M:%SZ",
    "%Y/%m/%d",
    "%m/%d/%Y",
    "%d/%m/%Y",
    "%m/%d/%Y %H:%M",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y",
    "%m-%d-%Y",
    "%d-%m-%Y",
    "%d %b %Y",
    "%d %B %Y",
    "%b %d, %Y",
    "%B %d, %Y",
    "%Y-%m",
)
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")


def quote(name: str) -> str:
    """A SQL identifier, quoted: any column name is safe."""
    return '"' + name.replace('"', '""') + '"'


def connect() -> duckdb.DuckDBPyConnection:
    import duckdb

    return duckdb.connect(
        ":memory:",
        config={
            "autoinstall_known_extensions": False,
            "autoload_known_extensions": False,
            "allow_community_extensions": False,
        },
    )


class TableError(ValueError):
    """The file could not be read as a table (the reader's message says where)."""


def load(conn: duckdb.DuckDBPyConnection, path: str | os.PathLike[str], fmt: str) -> None:
    """Read the file into the table `data` (raw: text dates are converted by `convert_dates`).

    DuckDB guesses column types from a sample of the file; when a later row contradicts the guess
    ("oops" in a column of numbers on line 30,002) the file is read again with every row sampled."""
    import duckdb

    fmt = fmt.lower()
    if fmt not in FORMATS:
        raise TableError(f"Unsupported table format {fmt!r}; use one of {', '.join(FORMATS)}")
    types = "auto_type_candidates = ['BIGINT', 'DOUBLE', 'VARCHAR']"
    reader = {
        "csv": f"read_csv(?, header = true, {types}{{sample}})",
        "tsv": f"read_csv(?, header = true, delim = '\t', {types}{{sample}})",
        "json": "read_json(?, format = 'array'{sample})",
        "jsonl": "read_json(?, format = 'newline_delimited'{sample})",
        "parquet": "read_parquet(?)",
    }[fmt]
    try:
        try:
            conn.execute(
                f"CREATE TABLE {TABLE} AS SELECT * FROM {reader.format(sample='')}", [os.fspath(path)]
            )
        except duckdb.ConversionException:
            if fmt == "parquet":
                raise
            whole = reader.format(sample=", sample_size = -1")
            conn.execute(f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * FROM {whole}", [os.fspath(path)])
    except duckdb.Error as e:
        raise TableError(f"Cannot read the {fmt} file as a table: {str(e).splitlines()[0]}") from e


def convert_dates(conn: duckdb.DuckDBPyConnection, formats: dict[str, str]) -> None:
    """Turn text date columns into DATE (a format without a time) or TIMESTAMP columns."""
    if not formats:
        return
    parts, params = [], []
    for column, fmt in formats.items():
        if fmt not in DATE_FORMATS:
            raise TableError(f"Unknown date format {fmt!r}")
        cast = "TIMESTAMP" if "%H" in fmt else "DATE"
        parts.append(f"CAST(strptime({quote(column)}, ?) AS {cast}) AS {quote(column)}")
        params.append(fmt)
    import duckdb

    try:
        conn.execute(
            f"CREATE OR REPLACE TABLE {TABLE} AS SELECT * REPLACE ({', '.join(parts)}) FROM {TABLE}", params
        )
    except duckdb.Error as e:
        raise TableError(f"The dates do not match their profiled formats: {str(e).splitlines()[0]}") from e


def lock_down(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("SET enable_external_access = false")
    conn.execute("SET lock_configuration = true")


def columns(conn: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    return [(str(r[0]), str(r[1])) for r in conn.execute(f"DESCRIBE {TABLE}").fetchall()]


def scalar(conn: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    row = conn.execute(sql, params or []).fetchone()
    return None if row is None else row[0]
