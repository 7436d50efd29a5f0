"""The golden set: questions over three generated tables, each with the exact expected result computed
independently in pandas from the same file, follow-ups included, and the questions that must be asked
back (clarify) or refused (unanswerable) rather than answered with an invented number.

A case is a chain of questions (each follow-up gets the previous answer's plan); the last answer is
checked. `expect` returns, from the pandas frame:
- a number (or a string, for a date): the answer is one row with that value;
- a dict: a grouped answer, {group key: value}, in any order;
- a list of (key, value): a ranked answer, in that order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from stratus.analytics import Answer, numbers_agree
from stratus.analytics.render import fmt_number


@dataclass
class Case:
    id: str
    table: str
    questions: list[str]
    expect: Callable[[Any], Any] | None = None
    kind: str = "answer"
    chart: str | None = None  # "bar", "line", "point" or None
    mentions: tuple[str, ...] = ()  # words a clarify/unanswerable text must contain


def _groups(series: Any, key: Callable[[Any], str] = str) -> dict[str, float]:
    return {key(k): float(v) for k, v in series.items()}


def _month(ts: Any) -> str:
    return ts.strftime("%Y-%m-01")


def _day(ts: Any) -> str:
    return ts.strftime("%Y-%m-%d")


def _q(d: Any, quarter: int, year: int | None = None) -> Any:
    m = d.date.dt.quarter == quarter
    if year is not None:
        m &= d.date.dt.year == year
    return d[m]


def _ranked(series: Any, n: int, ascending: bool = False) -> list[tuple[str, float]]:
    frame = series.rename("v").reset_index()
    frame = frame.sort_values(["v", frame.columns[0]], ascending=[ascending, True]).head(n)
    return [(str(k), float(v)) for k, v in zip(frame.iloc[:, 0], frame.v, strict=True)]


def _last_days(d: Any, column: str, n: int) -> Any:
    import pandas as pd

    end = d[column].max().normalize()
    return d[d[column].dt.normalize() > end - pd.Timedelta(days=n)]


SALES = [
    Case("avg-q3", "sales", ["What is the average revenue for Q3?"], lambda d: _q(d, 3).revenue.mean()),
    Case(
        "sum-q3-2024",
        "sales",
        ["What is the total revenue in Q3 2024?"],
        lambda d: _q(d, 3, 2024).revenue.sum(),
    ),
    Case(
        "follow-south",
        "sales",
        ["What is the total revenue in Q3 2024?", "And for the South?"],
        lambda d: (x := _q(d, 3, 2024))[x.region == "South"].revenue.sum(),
    ),
    Case(
        "follow-by-month",
        "sales",
        ["What is the total revenue in Q3 2024?", "and for the South?", "by month instead"],
        lambda d: _groups(
            (x := _q(d, 3, 2024))[x.region == "South"]
            .groupby(x.date.dt.to_period("M").dt.start_time)
            .revenue.sum(),
            _month,
        ),
        chart="line",
    ),
    Case(
        "follow-q4",
        "sales",
        ["What is the total revenue in Q3 2024?", "what about Q4?"],
        lambda d: _q(d, 4, 2024).revenue.sum(),
    ),
    Case(
        "which-region-highest",
        "sales",
        ["Which region has the highest revenue?"],
        lambda d: _ranked(d.groupby("region").revenue.sum(), 1),
    ),
    Case(
        "which-product-lowest-avg-price-2023",
        "sales",
        ["Which product had the lowest average unit price in 2023?"],
        lambda d: _ranked(d[d.date.dt.year == 2023].groupby("product").unit_price.mean(), 1, ascending=True),
    ),
    Case(
        "top-2-regions",
        "sales",
        ["Top 2 regions by revenue in 2024"],
        lambda d: _ranked(d[d.date.dt.year == 2024].groupby("region").revenue.sum(), 2),
        chart="bar",
    ),
    Case(
        "count-north-march",
        "sales",
        ["How many orders were placed in the North in March 2024?"],
        lambda d: len(d[(d.region == "North") & (d.date.dt.year == 2024) & (d.date.dt.month == 3)]),
    ),
    Case(
        "units-online",
        "sales",
        ["How many units were sold online?"],
        lambda d: d[d.channel == "Online"].units.sum(),
    ),
    Case(
        "revenue-by-region",
        "sales",
        ["Total revenue by region"],
        lambda d: _groups(d.groupby("region").revenue.sum()),
        chart="bar",
    ),
    Case(
        "monthly-2024",
        "sales",
        ["Monthly revenue in 2024"],
        lambda d: _groups(
            (x := d[d.date.dt.year == 2024]).groupby(x.date.dt.to_period("M").dt.start_time).revenue.sum(),
            _month,
        ),
        chart="line",
    ),
    Case("median-units", "sales", ["What is the median units per order?"], lambda d: d.units.median()),
    Case(
        "avg-revenue-units-over-10",
        "sales",
        ["Average revenue where units is over 10"],
        lambda d: d[d.units > 10].revenue.mean(),
    ),
    Case(
        "count-between",
        "sales",
        ["How many orders had revenue between 100 and 200?"],
        lambda d: len(d[(d.revenue >= 100) & (d.revenue <= 200)]),
    ),
    Case(
        "max-feb",
        "sales",
        ["What was the highest revenue in February 2024?"],
        lambda d: d[(d.date.dt.year == 2024) & (d.date.dt.month == 2)].revenue.max(),
    ),
    Case(
        "excluding-west",
        "sales",
        ["Total revenue excluding the West"],
        lambda d: d[d.region != "West"].revenue.sum(),
    ),
    Case(
        "north-and-south",
        "sales",
        ["Revenue for North and South"],
        lambda d: _groups(d[d.region.isin(["North", "South"])].groupby("region").revenue.sum()),
        chart="bar",
    ),
    Case(
        "last-30-days",
        "sales",
        ["Total units in the last 30 days"],
        lambda d: _last_days(d, "date", 30).units.sum(),
    ),
    Case(
        "distinct-products",
        "sales",
        ["How many different products are there?"],
        lambda d: d["product"].nunique(),
    ),
    Case(
        "quarterly-widgets",
        "sales",
        ["Quarterly revenue for Widgets"],
        lambda d: _groups(
            (x := d[d["product"] == "Widget"]).groupby(x.date.dt.to_period("Q").dt.start_time).revenue.sum(),
            _month,
        ),
        chart="line",
    ),
    Case(
        "avg-by-channel",
        "sales",
        ["Average revenue by channel"],
        lambda d: _groups(d.groupby("channel").revenue.mean()),
        chart="bar",
    ),
    Case("earliest-order", "sales", ["When was the earliest order date?"], lambda d: _day(d.date.min())),
    Case(
        "follow-year",
        "sales",
        ["Total revenue by region", "what about 2023?"],
        lambda d: _groups(d[d.date.dt.year == 2023].groupby("region").revenue.sum()),
        chart="bar",
    ),
    Case(
        "follow-median",
        "sales",
        ["Average revenue in the South", "and the median?"],
        lambda d: d[d.region == "South"].revenue.median(),
    ),
    Case(
        "follow-all-regions",
        "sales",
        ["Total revenue in the East in 2024", "and for all regions?"],
        lambda d: d[d.date.dt.year == 2024].revenue.sum(),
    ),
    Case(
        "gizmo-store-units",
        "sales",
        ["Total units of Gizmo sold in the Store channel in Q1 2023"],
        lambda d: (x := _q(d, 1, 2023))[(x["product"] == "Gizmo") & (x.channel == "Store")].units.sum(),
    ),
    Case(
        "typo-value",
        "sales",
        ["Average revenue in the Suoth"],
        lambda d: d[d.region == "South"].revenue.mean(),
    ),
    Case(
        "clarify-unknown-measure",
        "sales",
        ["show me sales by region"],
        kind="clarify",
        mentions=("sales", "revenue"),
    ),
    Case(
        "versus-values",
        "sales",
        ["total revenue for Widget in the East vs West"],
        lambda d: _groups(
            d[(d["product"] == "Widget") & d.region.isin(["East", "West"])].groupby("region").revenue.sum()
        ),
        chart="bar",
    ),
    Case(
        "number-then-column",
        "sales",
        ["What is the average revenue of orders with at least 5 units in the West?"],
        lambda d: d[(d.units >= 5) & (d.region == "West")].revenue.mean(),
    ),
    Case(
        "clarify-this-year",
        "sales",
        ["total revenue this year"],
        kind="clarify",
        mentions=("this year", "2024-12-31"),
    ),
    Case(
        "between-year-like-numbers",
        "sales",
        ["how many orders with revenue between 1000 and 2030"],
        lambda d: len(d[(d.revenue >= 1000) & (d.revenue <= 2030)]),
    ),
    Case(
        "clarify-two-years",
        "sales",
        ["revenue in 2023 and 2024"],
        kind="clarify",
        mentions=("2023 and 2024", "by year"),
    ),
    Case(
        "clarify-month-range",
        "sales",
        ["revenue from January to March 2024"],
        kind="clarify",
        mentions=("January and March",),
    ),
    Case(
        "total-number-of",
        "sales",
        ["total number of orders in 2024"],
        lambda d: len(d[d.date.dt.year == 2024]),
    ),
    Case(
        "clarify-two-aggregates",
        "sales",
        ["average and median revenue"],
        kind="clarify",
        mentions=("average", "median"),
    ),
    Case(
        "clarify-three-measures",
        "sales",
        ["total revenue, units and list price"],
        kind="clarify",
        mentions=("two",),
    ),
    Case(
        "clarify-profit",
        "sales",
        ["What is the average profit?"],
        kind="clarify",
        mentions=("profit", "revenue", "region"),
    ),
    Case(
        "clarify-price",
        "sales",
        ["What is the average price?"],
        kind="clarify",
        mentions=("list_price", "unit_price"),
    ),
    Case(
        "clarify-atlantis",
        "sales",
        ["What was the revenue in Atlantis?"],
        kind="clarify",
        mentions=("atlantis", "North"),
    ),
    Case("refuse-why", "sales", ["Why did revenue drop in Q4?"], kind="unanswerable", mentions=("why",)),
    Case(
        "refuse-2019",
        "sales",
        ["Total revenue in 2019"],
        kind="unanswerable",
        mentions=("2019", "2023-01-01"),
    ),
    Case(
        "refuse-avg-region",
        "sales",
        ["What is the average region?"],
        kind="unanswerable",
        mentions=("region", "category"),
    ),
    Case("refuse-next-year", "sales", ["What will revenue be next year?"], kind="unanswerable"),
]

SURVEY = [
    Case(
        "avg-satisfaction", "survey", ["What is the average satisfaction?"], lambda d: d.satisfaction.mean()
    ),
    Case(
        "satisfaction-by-plan",
        "survey",
        ["Average satisfaction by plan"],
        lambda d: _groups(d.groupby("plan").satisfaction.mean()),
        chart="bar",
    ),
    Case(
        "count-germany",
        "survey",
        ["How many respondents from Germany?"],
        lambda d: len(d[d.country == "Germany"]),
    ),
    Case(
        "avg-nps-uk",
        "survey",
        ["Average NPS in the United Kingdom"],
        lambda d: d[d.country == "United Kingdom"].nps.mean(),
    ),
    Case(
        "older-than-40", "survey", ["How many respondents are older than 40?"], lambda d: len(d[d.age > 40])
    ),
    Case(
        "median-age-enterprise",
        "survey",
        ["Median age of Enterprise respondents"],
        lambda d: d[d.plan == "Enterprise"].age.median(),
    ),
    Case(
        "country-highest-nps",
        "survey",
        ["Which country has the highest average nps?"],
        lambda d: _ranked(d.groupby("country").nps.mean(), 1),
    ),
    Case(
        "satisfaction-5",
        "survey",
        ["How many respondents gave a satisfaction of 5?"],
        lambda d: len(d[d.satisfaction == 5]),
    ),
    Case(
        "avg-satisfaction-march",
        "survey",
        ["Average satisfaction in March"],
        lambda d: d[d.submitted.dt.month == 3].satisfaction.mean(),
    ),
    Case(
        "responses-per-month",
        "survey",
        ["How many responses per month?"],
        lambda d: _groups(d.groupby(d.submitted.dt.to_period("M").dt.start_time).size(), _month),
        chart="line",
    ),
    Case(
        "follow-japan",
        "survey",
        ["Average nps by plan", "and for Japan?"],
        lambda d: _groups(d[d.country == "Japan"].groupby("plan").nps.mean()),
        chart="bar",
    ),
    Case(
        "answered-yes",
        "survey",
        ["How many respondents answered yes?"],
        lambda d: len(d[d.would_recommend == "yes"]),
    ),
    Case(
        "distinct-countries",
        "survey",
        ["How many different countries are there?"],
        lambda d: d.country.nunique(),
    ),
    Case(
        "answered-no", "survey", ["How many people answered no?"], lambda d: len(d[d.would_recommend == "no"])
    ),
    Case(
        "default-average",
        "survey",
        ["What is the satisfaction in France?"],
        lambda d: d[d.country == "France"].satisfaction.mean(),
    ),
    Case(
        "youngest-in-japan",
        "survey",
        ["age of the youngest respondent in Japan"],
        lambda d: d[d.country == "Japan"].age.min(),
    ),
    Case(
        "years-old-between",
        "survey",
        ["How many respondents are between 20 and 30 years old?"],
        lambda d: len(d[(d.age >= 20) & (d.age <= 30)]),
    ),
    Case(
        "follow-top-keeps-median",
        "survey",
        ["median nps", "by country", "top 2"],
        lambda d: _ranked(d.groupby("country").nps.median(), 2),
        chart="bar",
    ),
    Case("count-of-countries", "survey", ["count of countries"], lambda d: d.country.nunique()),
    Case(
        "clarify-unused-category",
        "survey",
        ["average age of people who would recommend"],
        kind="clarify",
        mentions=("would_recommend", "yes"),
    ),
    Case(
        "clarify-share",
        "survey",
        ["What percentage of respondents are from Japan?"],
        kind="clarify",
        mentions=("percentage",),
    ),
    Case(
        "clarify-unknown-words",
        "survey",
        ["how many comments mention price?"],
        kind="clarify",
        mentions=("mention",),
    ),
    Case(
        "clarify-income",
        "survey",
        ["What is the average income?"],
        kind="clarify",
        mentions=("income", "age", "nps"),
    ),
]

SENSORS = [
    Case(
        "avg-temp-s1",
        "sensors",
        ["What is the average temperature for sensor S1?"],
        lambda d: d[d.sensor == "S1"].temperature_c.mean(),
    ),
    Case(
        "max-humidity-roof-feb",
        "sensors",
        ["Highest humidity on the Roof in February"],
        lambda d: d[(d.location == "Roof") & (d.timestamp.dt.month == 2)].humidity.max(),
    ),
    Case(
        "sensor-highest-avg-temp",
        "sensors",
        ["Which sensor has the highest average temperature?"],
        lambda d: _ranked(d.groupby("sensor").temperature_c.mean(), 1),
    ),
    Case(
        "daily-last-7",
        "sensors",
        ["Daily average temperature in the last 7 days"],
        lambda d: _groups(
            (x := _last_days(d, "timestamp", 7)).groupby(x.timestamp.dt.normalize()).temperature_c.mean(),
            _day,
        ),
        chart="line",
    ),
    Case(
        "humidity-by-location",
        "sensors",
        ["Average humidity by location"],
        lambda d: _groups(d.groupby("location").humidity.mean()),
        chart="bar",
    ),
    Case(
        "count-hot",
        "sensors",
        ["How many readings had a temperature above 30?"],
        lambda d: len(d[d.temperature_c > 30]),
    ),
    Case(
        "follow-temp-by-month",
        "sensors",
        ["Average temperature by sensor", "by month instead"],
        lambda d: _groups(
            d.groupby(d.timestamp.dt.to_period("M").dt.start_time).temperature_c.mean(), _month
        ),
        chart="line",
    ),
    Case(
        "follow-basement",
        "sensors",
        ["Average temperature in the Lab", "what about the Basement?"],
        lambda d: d[d.location == "Basement"].temperature_c.mean(),
    ),
    Case("min-battery", "sensors", ["What was the lowest battery level?"], lambda d: d.battery.min()),
    Case(
        "min-temp-s3-january",
        "sensors",
        ["Lowest temperature of S3 in January"],
        lambda d: d[(d.sensor == "S3") & (d.timestamp.dt.month == 1)].temperature_c.min(),
    ),
    Case(
        "max-per-sensor-last-3-days",
        "sensors",
        ["max temperature per sensor in the last 3 days"],
        lambda d: _groups(_last_days(d, "timestamp", 3).groupby("sensor").temperature_c.max()),
        chart="bar",
    ),
    Case(
        "one-day",
        "sensors",
        ["average temperature on 2024-02-14"],
        lambda d: d[d.timestamp.dt.normalize() == "2024-02-14"].temperature_c.mean(),
    ),
    Case(
        "follow-other-day",
        "sensors",
        ["average temperature on 2024-02-14", "what about March 3?"],
        lambda d: d[d.timestamp.dt.normalize() == "2024-03-03"].temperature_c.mean(),
    ),
    Case(
        "hourly-one-day",
        "sensors",
        ["hourly humidity of the Garage on March 30"],
        lambda d: _groups(
            d[(d.location == "Garage") & (d.timestamp.dt.normalize() == "2024-03-30")]
            .groupby("timestamp")
            .humidity.mean(),
            lambda ts: ts.isoformat(),
        ),
        chart="line",
    ),
    Case(
        "clarify-yesterday",
        "sensors",
        ["What was the temperature on the roof yesterday?"],
        kind="clarify",
        mentions=("yesterday",),
    ),
    Case(
        "clarify-unknown-code",
        "sensors",
        ["What is the battery of S9?"],
        kind="clarify",
        mentions=("s9", "S1"),
    ),
    Case("clarify-stray-number", "sensors", ["temperature of sensor 2"], kind="clarify", mentions=("S1",)),
    Case(
        "coldest-location",
        "sensors",
        ["Which location is coldest?"],
        lambda d: _ranked(d.groupby("location").temperature_c.mean(), 1, ascending=True),
    ),
    Case("refuse-forecast", "sensors", ["Forecast the temperature for next week"], kind="unanswerable"),
    Case(
        "clarify-pressure",
        "sensors",
        ["What is the average pressure?"],
        kind="clarify",
        mentions=("pressure", "humidity"),
    ),
]

CASES = SALES + SURVEY + SENSORS


def _ask(tables: dict[str, Any], case: Case) -> Answer:
    assistant = tables[case.table].assistant
    plan = None
    answer = None
    for question in case.questions:
        answer = assistant.answer(question, plan)
        plan = answer.plan
    assert answer is not None
    return answer


def _close(got: Any, want: Any) -> bool:
    if isinstance(want, str) or isinstance(got, str):
        return str(got)[: len(str(want))] == str(want)
    return got == pytest.approx(float(want), rel=1e-9, abs=1e-9)


def test_the_golden_set_is_large_enough() -> None:
    assert len(CASES) >= 40
    assert len({c.table for c in CASES}) >= 3
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_golden(tables: dict[str, Any], case: Case) -> None:
    answer = _ask(tables, case)
    assert answer.kind == case.kind, answer.text
    # the template sentence cites only computed numbers (or, for a refusal, none made up)
    assert numbers_agree(answer.text, answer.numbers), answer.text
    for word in case.mentions:
        assert word.lower() in answer.text.lower(), answer.text
    if case.kind != "answer":
        assert answer.rows == [] and answer.query is None and answer.chart is None
        return
    assert case.expect is not None
    want = case.expect(tables[case.table].frame)
    assert answer.query is not None and answer.plan is not None
    assert "?" in answer.query or not answer.params  # values travel as parameters
    if isinstance(want, dict):
        got = {str(r[0]): r[1] for r in answer.rows}
        assert set(got) == set(want), (answer.query, answer.params)
        for key, value in want.items():
            assert _close(got[key], value), (key, got[key], value)
    elif isinstance(want, list):
        assert [str(r[0]) for r in answer.rows] == [k for k, _ in want], answer.rows
        for row, (_, value) in zip(answer.rows, want, strict=True):
            assert _close(row[1], value)
        assert fmt_number(answer.rows[0][1]) in answer.text or len(want) > 1
    else:
        assert len(answer.rows) == 1 and len(answer.rows[0]) == 1, answer.rows
        assert _close(answer.rows[0][0], want), (answer.rows, want, answer.query, answer.params)
        if not isinstance(want, str):
            assert fmt_number(answer.rows[0][0]) in answer.text, answer.text
    assert (answer.chart or {}).get("mark", None) in (None, case.chart) or (
        isinstance(answer.chart, dict) and answer.chart["mark"].get("type") == case.chart  # type: ignore[union-attr]
    ), answer.chart
    if case.chart is None:
        assert answer.chart is None
    else:
        assert answer.chart is not None and answer.chart["$schema"].endswith("/v5.json")
        assert len(answer.chart["data"]["values"]) == len(answer.rows)


def test_random_word_salad_never_raises_and_never_cites_a_foreign_number(tables: dict[str, Any]) -> None:
    """Questions made of keywords, column names, values and numbers at random: every answer is one of
    the three kinds, JSON-ready, and its sentence cites only its own numbers."""
    import json
    import random

    from stratus.analytics.parse import KEYWORDS

    rng = random.Random(5)
    extra = ["2023", "2024", "10", "1,000", "between", "and", "by", "which", "top", "?"]
    common = [*sorted(KEYWORDS)[:200], *extra]
    for table in tables.values():
        names = [c.name for c in table.profile.columns] + [
            v for c in table.profile.columns for v in c.values or []
        ]
        plan = None
        for _ in range(150):
            question = " ".join(rng.choice(common + names * 3) for _ in range(rng.randint(1, 8)))
            answer = table.assistant.answer(question, plan if rng.random() < 0.5 else None)
            assert answer.kind in {"answer", "clarify", "unanswerable"}
            assert numbers_agree(answer.text, answer.numbers), (question, answer.text)
            json.dumps(answer.to_dict())
            plan = answer.plan if answer.kind == "answer" else plan
