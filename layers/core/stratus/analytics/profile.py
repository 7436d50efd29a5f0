"""What each column of a table is: read once, kept with the dataset, used to parse questions."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Semantic = Literal["quantity", "category", "time", "text", "id"]
FORMATS = ("csv", "tsv", "json", "jsonl", "parquet")


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
    """Profile the table in `path` (`fmt`: csv, tsv, json, jsonl or parquet)."""
    raise NotImplementedError
