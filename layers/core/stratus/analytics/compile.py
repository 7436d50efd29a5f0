"""A plan to one parameterised DuckDB query over the table `data`.

Identifiers are quoted (`engine.quote`) and must be columns of the profile; every value from the
question (a category value, a bound, a year, a limit) is a `?` parameter. The only words written into
the SQL are this module's own: aggregate functions and `date_trunc` grains from fixed maps.
"""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from stratus.analytics.engine import TABLE, quote
from stratus.analytics.plan import Plan, Window
from stratus.analytics.profile import DatasetProfile

ROW_CAP = 1000  # most groups a grouped answer returns
POINT_CAP = 5000  # most points a scatter of raw rows returns
AGG_SQL = {"sum": "sum({})", "avg": "avg({})", "median": "median({})", "min": "min({})", "max": "max({})"}
GRAIN_SQL = {
    "hour": "CAST(date_trunc('hour', {}) AS TIMESTAMP)",
    "day": "CAST({} AS DATE)",
    "week": "CAST(date_trunc('week', {}) AS DATE)",
    "month": "CAST(date_trunc('month', {}) AS DATE)",
    "quarter": "CAST(date_trunc('quarter', {}) AS DATE)",
    "year": "CAST(date_trunc('year', {}) AS DATE)",
}
OP_SQL = {"=": "=", "!=": "<>", ">": ">", ">=": ">=", "<": "<", "<=": "<="}
MONTHS_OF = {"hour": 0, "day": 0, "week": 0, "month": 1, "quarter": 3, "year": 12}


def measure_alias(plan: Plan, measure: str | None) -> str:
    if plan.aggregate == "count":
        return "count"
    if plan.aggregate == "count_distinct":
        return f"distinct_{measure}"
    if plan.aggregate == "none":
        return str(measure)
    return f"{plan.aggregate}_{measure}"


def group_alias(column: str, grain: str | None) -> str:
    return grain or column


def cutoff(max_iso: str, n: int, unit: str) -> dt.date:
    """The day before a window of the last n units that ends on the data's last day."""
    end = dt.date.fromisoformat(str(max_iso)[:10])
    if unit in {"day", "week"}:
        return end - dt.timedelta(days=n * (7 if unit == "week" else 1))
    months = end.year * 12 + end.month - 1 - n * MONTHS_OF[unit]
    year, month = divmod(months, 12)
    return dt.date(year, month + 1, min(end.day, calendar.monthrange(year, month + 1)[1]))


def window_range(w: Window) -> tuple[dt.date, dt.date] | None:
    """[start, end) of a window with a year, or None."""
    if w.year is None:
        return None
    if w.month is not None and w.day is not None:
        start = dt.date(w.year, w.month, w.day)
        end = start + dt.timedelta(days=1)
    elif w.month is not None:
        start = dt.date(w.year, w.month, 1)
        end = dt.date(w.year + (w.month == 12), w.month % 12 + 1, 1)
    elif w.quarter is not None:
        start = dt.date(w.year, 3 * w.quarter - 2, 1)
        end = dt.date(w.year + (w.quarter == 4), (3 * w.quarter) % 12 + 1, 1)
    else:
        start, end = dt.date(w.year, 1, 1), dt.date(w.year + 1, 1, 1)
    return start, end


def compile_plan(plan: Plan, profile: DatasetProfile) -> tuple[str, list[Any]]:
    names = {c.name for c in profile.columns}
    used = (
        plan.measures + [g.column for g in plan.group_by] + [f.column for f in plan.filters]
        + ([plan.window.column] if plan.window else [])
    )  # fmt: skip
    if unknown := [u for u in used if u not in names]:
        raise ValueError(f"plan names unknown columns: {unknown}")
    select: list[str] = []
    params: list[Any] = []
    keys = []
    for g in plan.group_by:
        expr = GRAIN_SQL[g.grain].format(quote(g.column)) if g.grain else quote(g.column)
        keys.append(expr)
        select.append(f"{expr} AS {quote(group_alias(g.column, g.grain))}")
    if plan.aggregate == "count":
        select.append(f"count(*) AS {quote('count')}")
    elif plan.aggregate == "count_distinct":
        m = plan.measures[0]
        select.append(f"count(DISTINCT {quote(m)}) AS {quote(measure_alias(plan, m))}")
    elif plan.aggregate == "none":
        select.extend(quote(m) for m in plan.measures)
    else:
        for m in plan.measures:
            select.append(f"{AGG_SQL[plan.aggregate].format(quote(m))} AS {quote(measure_alias(plan, m))}")
    where: list[str] = []
    for f in plan.filters:
        col = profile.column(f.column)
        q = quote(f.column)
        if col is not None and col.semantic == "category" and not col.dtype.upper().startswith("VARCHAR"):
            q = f"CAST({q} AS VARCHAR)"
        if f.op in OP_SQL:
            where.append(f"{q} {OP_SQL[f.op]} ?")
            params.append(f.values[0])
        elif f.op == "between":
            where.append(f"{q} BETWEEN ? AND ?")
            params.extend(f.values[:2])
        else:
            marks = ", ".join("?" for _ in f.values)
            where.append(f"{q} {'NOT IN' if f.op == 'not in' else 'IN'} ({marks})")
            params.extend(f.values)
    if plan.window:
        w, q = plan.window, quote(plan.window.column)
        if w.last:
            col = profile.column(w.column)
            if col is None or col.max is None:
                raise ValueError(f"{w.column} has no dates")
            where.append(f"CAST({q} AS DATE) > ?")
            params.append(cutoff(str(col.max), int(w.last["n"]), str(w.last["unit"])))
        for part, value in (("year", w.year), ("quarter", w.quarter), ("month", w.month), ("day", w.day)):
            if value is not None:
                where.append(f"{part}({q}) = ?")
                params.append(int(value))
    sql = f"SELECT {', '.join(select)} FROM {TABLE}"
    if plan.aggregate == "none":
        where.extend(f"{quote(m)} IS NOT NULL" for m in plan.measures)
    if where:
        sql += " WHERE " + " AND ".join(where)
    if plan.aggregate == "none":
        sql += " LIMIT ?"
        params.append(POINT_CAP)
        return sql, params
    if keys:
        sql += " GROUP BY " + ", ".join(keys)
        order = [f"{k} ASC NULLS LAST" for k in keys]
        if plan.order:
            first = quote(measure_alias(plan, plan.measures[0] if plan.measures else None))
            order.insert(0, f"{first} {plan.order.upper()} NULLS LAST")
        sql += " ORDER BY " + ", ".join(order) + " LIMIT ?"
        params.append(min(plan.limit or ROW_CAP, ROW_CAP))
    return sql, params
