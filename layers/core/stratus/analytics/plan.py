"""The typed plan a question is parsed into, kept as JSON with the answer for follow-ups.

{"aggregate": "sum" | "avg" | "median" | "min" | "max" | "count" | "count_distinct" | "none",
 "measures": ["revenue"],                       # 0 (count), 1, or 2 (two measures: a scatter)
 "group_by": [{"column": "region", "grain": null},
              {"column": "date", "grain": "month"}],   # grain: hour|day|week|month|quarter|year
 "filters": [{"column": "region", "op": "=" | "!=" | "in" | "not in" | ">" | ">=" | "<" | "<="
              | "between", "values": ["South"]}],
 "window": {"column": "date", "year": 2024, "quarter": 3, "month": null, "day": null,
            "last": {"n": 30, "unit": "day"} | null} | null,
 "order": "desc" | "asc" | null, "limit": 3 | null}
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

AGGREGATES = ("sum", "avg", "median", "min", "max", "count", "count_distinct", "none")
GRAINS = ("hour", "day", "week", "month", "quarter", "year")
OPS = ("=", "!=", "in", "not in", ">", ">=", "<", "<=", "between")
UNITS = ("day", "week", "month", "quarter", "year")


@dataclass
class Group:
    column: str
    grain: str | None = None


@dataclass
class Filter:
    column: str
    op: str
    values: list[Any]


@dataclass
class Window:
    column: str
    year: int | None = None
    quarter: int | None = None
    month: int | None = None
    last: dict[str, Any] | None = None
    day: int | None = None  # with a month: one day  # {"n": 30, "unit": "day"}, relative to the column's max

    def empty(self) -> bool:
        return self.year is None and self.quarter is None and self.month is None and self.last is None


@dataclass
class Plan:
    aggregate: str = "count"
    measures: list[str] = field(default_factory=list)
    group_by: list[Group] = field(default_factory=list)
    filters: list[Filter] = field(default_factory=list)
    window: Window | None = None
    order: str | None = None
    limit: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Plan:
        """A plan from JSON, checked: anything unknown is a ValueError (a stored plan is input too)."""
        agg = data.get("aggregate", "count")
        if agg not in AGGREGATES:
            raise ValueError(f"unknown aggregate {agg!r}")
        groups = [Group(str(g["column"]), g.get("grain")) for g in data.get("group_by") or []]
        if any(g.grain not in (None, *GRAINS) for g in groups):
            raise ValueError("unknown time grain")
        filters = [
            Filter(str(f["column"]), str(f["op"]), list(f["values"])) for f in data.get("filters") or []
        ]
        if any(f.op not in OPS for f in filters):
            raise ValueError("unknown filter operator")
        w = data.get("window")
        window = None
        if w:
            window = Window(
                str(w["column"]), w.get("year"), w.get("quarter"), w.get("month"), w.get("last"), w.get("day")
            )
            for part in (window.year, window.quarter, window.month, window.day):
                if part is not None and not isinstance(part, int):
                    raise ValueError("bad window")
            if window.last is not None and (
                window.last.get("unit") not in UNITS or not isinstance(window.last.get("n"), int)
            ):
                raise ValueError("bad relative window")
        order = data.get("order")
        if order not in (None, "asc", "desc"):
            raise ValueError("bad order")
        limit = data.get("limit")
        if limit is not None and (not isinstance(limit, int) or limit < 1):
            raise ValueError("bad limit")
        return cls(agg, [str(m) for m in data.get("measures") or []], groups, filters, window, order, limit)
