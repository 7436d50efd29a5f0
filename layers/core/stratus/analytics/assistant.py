"""Questions in, computed answers out."""

from __future__ import annotations

import datetime as dt
import decimal
import os
import re
import threading
from typing import TYPE_CHECKING, Any

from stratus.analytics import engine
from stratus.analytics.answer import Answer, AnswerKind
from stratus.analytics.compile import compile_plan, window_range
from stratus.analytics.numbers import extract
from stratus.analytics.parse import Clarify, Parser, Unanswerable, build_plan
from stratus.analytics.plan import Plan
from stratus.analytics.profile import DatasetProfile
from stratus.analytics.render import chart, sentence, where_phrase

if TYPE_CHECKING:
    import duckdb


MAX_QUESTION = 1000  # characters: the parser's fuzzy matching grows with the question's length


class Assistant:
    """Answers questions about one table. Build it once per dataset (the table is loaded into an
    in-memory, locked-down DuckDB on first use) and call `answer` per question; pass the previous
    answer's `plan` as `previous_plan` for a follow-up ("and for the South?", "by month instead").
    Safe to share between threads: queries on its connection run one at a time. A file that cannot be
    read as a table raises `TableError` (a ValueError) from the first answer."""

    def __init__(self, profile: DatasetProfile, table_path: str | os.PathLike[str], fmt: str = "csv") -> None:
        self.profile = profile
        self.table_path = os.fspath(table_path)
        self.fmt = fmt
        self._conn: duckdb.DuckDBPyConnection | None = None
        self._lock = threading.Lock()

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The loaded, locked-down database (loaded on first use)."""
        if self._conn is None:
            conn = engine.connect()
            try:
                engine.load(conn, self.table_path, self.fmt)
                loaded = dict(engine.columns(conn))
                engine.convert_dates(
                    conn,
                    {
                        c.name: c.date_format
                        for c in self.profile.columns
                        if c.semantic == "time" and c.date_format and loaded.get(c.name) == "VARCHAR"
                    },
                )
                engine.lock_down(conn)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def run(self, sql: str, params: list[Any]) -> tuple[list[str], list[list[Any]]]:
        with self._lock:
            cur = self.connection().execute(sql, params)
            columns = [d[0] for d in cur.description or []]
            rows = [[_json(v) for v in row] for row in cur.fetchall()]
        return columns, rows

    def plan(self, question: str, previous_plan: dict[str, Any] | None = None) -> Plan:
        """The plan for a question (raises Clarify or Unanswerable)."""
        previous = None
        if previous_plan:
            try:
                previous = Plan.from_dict(previous_plan)
                compile_plan(previous, self.profile)  # names only this table's columns
            except (ValueError, KeyError, TypeError, AttributeError):
                previous = None  # a stale or foreign plan: the question stands alone
        parser = Parser(self.profile)
        if not question.strip():
            raise parser.clarify("What would you like to know?")
        if len(question) > MAX_QUESTION:
            raise parser.clarify(f"Please ask in at most {MAX_QUESTION} characters.")
        plan = build_plan(parser.parse(question, follows=previous is not None), parser, previous)
        self._check_window(plan, parser)
        return plan

    def answer(self, question: str, previous_plan: dict[str, Any] | None = None) -> Answer:
        try:
            plan = self.plan(question, previous_plan)
            sql, params = compile_plan(plan, self.profile)
        except (Clarify, Unanswerable) as e:
            # The question is asked back or refused; the conversation keeps its previous plan, and the
            # only numbers are those of this text (the data's dates, values such as S1).
            text = str(e)
            kind: AnswerKind = "clarify" if isinstance(e, Clarify) else "unanswerable"
            return Answer(kind, text, plan=previous_plan, numbers=[v * s for v, _, s in extract(text)])
        columns, rows = self.run(sql, params)
        text = sentence(plan, self.profile, columns, rows)
        numbers = _numbers(rows, text, plan, params)
        return Answer(
            kind="answer",
            text=text,
            plan=plan.to_dict(),
            query=sql,
            params=[_json(p) for p in params],
            columns=columns,
            rows=rows,
            chart=chart(plan, self.profile, columns, rows),
            numbers=numbers,
        )

    def _check_window(self, plan: Plan, parser: Parser) -> None:
        """A period outside the data is missing data, not zero."""
        w = plan.window
        col = self.profile.column(w.column) if w else None
        if w is None or col is None or not col.min or not col.max:
            return
        lo, hi = dt.date.fromisoformat(str(col.min)[:10]), dt.date.fromisoformat(str(col.max)[:10])
        span = window_range(w)
        if span is not None and (span[1] <= lo or span[0] > hi):
            asked = where_phrase(Plan(window=w), self.profile).strip().removeprefix("in ")
            raise Unanswerable(
                f"The data covers {lo.isoformat()} to {hi.isoformat()}; it has no rows for {asked}."
            )


def _json(v: Any) -> Any:
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (dt.date, dt.datetime, dt.time)):
        return v.isoformat()
    if isinstance(v, dt.timedelta):
        return v.total_seconds()
    return v


def _numbers(rows: list[list[Any]], text: str, plan: Plan, params: list[Any]) -> list[float]:
    """Every number a phrasing may cite: the result's, the dates' parts, the question's own (a year, a
    top N, a bound) and those of the template sentence (so the template itself always agrees)."""
    out: list[float] = []
    for row in rows:
        for v in row:
            if isinstance(v, bool):
                continue
            if isinstance(v, (int, float)):
                out.append(float(v))
            elif isinstance(v, str) and re.match(r"^\d{4}-\d{2}", v):
                out.extend(float(x) for x in re.findall(r"\d+", v[:19]))
                out.append(float((int(v[5:7]) - 1) // 3 + 1))  # its quarter
    for p in params:
        if isinstance(p, (int, float)) and not isinstance(p, bool):
            out.append(float(p))
    out.append(float(len(rows)))
    if plan.limit:
        out.append(float(plan.limit))
    out.extend(v * s for v, _, s in extract(text))
    return list(dict.fromkeys(out))
