"""The template sentence and the chart for a computed result: both read only the plan and the rows."""

from __future__ import annotations

import datetime as dt
from typing import Any

from stratus.analytics.compile import group_alias, measure_alias, window_range
from stratus.analytics.plan import Filter, Plan
from stratus.analytics.profile import DatasetProfile

VEGA_LITE = "https://vega.github.io/schema/vega-lite/v5.json"
AGG_WORDS = {
    "sum": "total", "avg": "average", "median": "median", "min": "lowest", "max": "highest",
}  # fmt: skip
OP_WORDS = {
    "=": "is", "!=": "is not", ">": "is over", ">=": "is at least", "<": "is under", "<=": "is at most",
}  # fmt: skip
MONTH_NAMES = [
    "", "January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
    "November", "December",
]  # fmt: skip
LISTED = 12  # groups named in a sentence; the rest are counted


def fmt_number(x: Any) -> str:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return str(x)
    if float(x).is_integer():
        return f"{int(x):,}"
    if abs(x) >= 1:
        return f"{x:,.2f}"
    return f"{x:.4g}"


def fmt_key(value: Any, grain: str | None) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return str(value).lower()
    if grain and isinstance(value, str) and len(value) >= 10:
        d = dt.date.fromisoformat(value[:10])
        if grain == "month":
            return f"{MONTH_NAMES[d.month]} {d.year}"
        if grain == "quarter":
            return f"Q{(d.month - 1) // 3 + 1} {d.year}"
        if grain == "year":
            return str(d.year)
        if grain == "hour":
            return value[:16].replace("T", " ")
        if grain == "week":
            return f"the week of {d.isoformat()}"
    return fmt_number(value) if isinstance(value, (int, float)) else str(value)


def _values(values: list[Any]) -> str:
    shown = [fmt_number(v) if isinstance(v, (int, float)) else str(v) for v in values]
    return shown[0] if len(shown) == 1 else ", ".join(shown[:-1]) + " or " + shown[-1]


def where_phrase(plan: Plan, profile: DatasetProfile) -> str:
    conditions = [_filter_phrase(f) for f in plan.filters]
    parts = ["where " + " and ".join(conditions)] if conditions else []
    w = plan.window
    if w is not None:
        if w.last:
            n, unit = w.last["n"], w.last["unit"]
            col = profile.column(w.column)
            end = str(col.max)[:10] if col and col.max else "the last date"
            parts.append(f"in the last {n} {unit}{'s' if n != 1 else ''} of data (up to {end})")
        else:
            period = ""
            if w.month is not None:
                period = MONTH_NAMES[w.month] + (f" {w.day}," if w.day is not None else "")
            elif w.quarter is not None:
                period = f"Q{w.quarter}"
            if w.year is not None:
                prep = "on" if w.day is not None else "in"
                parts.append(f"{prep} {period} {w.year}" if period else f"in {w.year}")
            elif period:
                col = profile.column(w.column)
                years = {str(col.min)[:4], str(col.max)[:4]} if col and col.min and col.max else set()
                if len(years) == 2:
                    lo, hi = sorted(years)
                    parts.append(
                        f"{'on' if w.day else 'in'} {period.rstrip(',')} of every year ({lo} to {hi})"
                    )
                else:
                    parts.append(f"{'on' if w.day else 'in'} {period}" + (f" {years.pop()}" if years else ""))
    if w is not None and not w.empty() and sum(c.semantic == "time" for c in profile.columns) > 1:
        parts[-1] += f" (by {w.column})"
    return (" " + " ".join(parts)) if parts else ""


def _filter_phrase(f: Filter) -> str:
    if f.op == "between":
        return f"{f.column} is between {fmt_number(f.values[0])} and {fmt_number(f.values[1])}"
    if f.op in {"in", "not in"}:
        return f"{f.column} is {'not ' if f.op == 'not in' else ''}{_values(f.values)}"
    return f"{f.column} {OP_WORDS[f.op]} {_values(f.values)}"


def what(plan: Plan, measure: str | None, profile: DatasetProfile | None = None) -> str:
    col = profile.column(measure) if profile is not None and measure else None
    if col is not None and col.semantic == "time" and plan.aggregate in {"min", "max"}:
        return f"{'earliest' if plan.aggregate == 'min' else 'latest'} {measure}"
    if plan.aggregate == "count":
        return "number of rows"
    if plan.aggregate == "count_distinct":
        return f"number of distinct {measure} values"
    return f"{AGG_WORDS.get(plan.aggregate, plan.aggregate)} {measure}"


def sentence(plan: Plan, profile: DatasetProfile, columns: list[str], rows: list[list[Any]]) -> str:
    where = where_phrase(plan, profile)
    ng = len(plan.group_by)
    measures: list[str | None] = [*plan.measures] or [None]
    if plan.aggregate == "none":
        return f"{len(rows):,} rows of {plan.measures[0]} against {plan.measures[1]}{where} are plotted."
    if not rows or (ng == 0 and all(v is None for v in rows[0])):
        return f"No rows match{where or ' the question'}, so there is no {what(plan, measures[0], profile)} to report."
    if ng == 0:
        values = rows[0]
        if plan.aggregate == "count":
            return f"There {'is' if values[0] == 1 else 'are'} {fmt_number(values[0])} row{'s' if values[0] != 1 else ''}{where}."
        parts = [
            f"the {what(plan, m, profile)}{where} is {fmt_key(v, None)}"
            for m, v in zip(measures, values, strict=False)
        ]
        text = " and ".join(parts)
        return text[0].upper() + text[1:] + "."

    def key(row: list[Any]) -> str:
        return ", ".join(fmt_key(row[i], plan.group_by[i].grain) for i in range(ng))

    by = " and ".join(g.grain or g.column for g in plan.group_by)
    if plan.order and plan.limit == 1:
        rank = "highest" if plan.order == "desc" else "lowest"
        return f"{key(rows[0])} has the {rank} {what(plan, measures[0], profile)}{where}: {fmt_key(rows[0][ng], None)}."
    listed = "; ".join(f"{key(r)}: " + ", ".join(fmt_key(v, None) for v in r[ng:]) for r in rows[:LISTED])
    more = f"; and {len(rows) - LISTED:,} more" if len(rows) > LISTED else ""
    head = " and ".join(what(plan, m, profile) for m in measures)
    if plan.order and plan.limit:
        head = f"the {'top' if plan.order == 'desc' else 'bottom'} {plan.limit} by {head}"
    return f"{head[0].upper() + head[1:]} by {by}{where}: {listed}{more}."


def chart(
    plan: Plan, profile: DatasetProfile, columns: list[str], rows: list[list[Any]]
) -> dict[str, Any] | None:
    """Vega-Lite from the result's shape: category + measure: bar; time + measure: line; two
    measures: scatter; one number (or one row): none."""
    if len(rows) <= 1:
        return None
    values = [dict(zip(columns, r, strict=True)) for r in rows]
    spec: dict[str, Any] = {"$schema": VEGA_LITE, "data": {"values": values}}
    ng = len(plan.group_by)
    measure_cols = columns[ng:]
    if len(measure_cols) == 2:
        spec["mark"] = "point"
        spec["encoding"] = {
            "x": {"field": measure_cols[0], "type": "quantitative"},
            "y": {"field": measure_cols[1], "type": "quantitative"},
        }
        if ng:
            spec["encoding"]["tooltip"] = [{"field": c} for c in columns]
        return spec
    if ng == 0:
        return None
    first = plan.group_by[0]
    x_col = group_alias(first.column, first.grain)
    y = {"field": measure_cols[0], "type": "quantitative"}
    if first.grain or (profile.column(first.column) and profile.column(first.column).semantic == "time"):  # type: ignore[union-attr]
        spec["mark"] = {"type": "line", "point": True}
        spec["encoding"] = {"x": {"field": x_col, "type": "temporal"}, "y": y}
    else:
        spec["mark"] = "bar"
        spec["encoding"] = {"x": {"field": x_col, "type": "nominal", "sort": None}, "y": y}
    if ng > 1:
        second = plan.group_by[1]
        spec["encoding"]["color"] = {"field": group_alias(second.column, second.grain), "type": "nominal"}
    return spec


__all__ = ["chart", "fmt_number", "measure_alias", "sentence", "where_phrase", "window_range"]
