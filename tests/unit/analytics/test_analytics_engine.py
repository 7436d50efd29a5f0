"""The engine's parts on their own: profiles of every format, the locked-down database, values as
parameters, stored plans as input, the number check and the import cost."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from stratus.analytics import Assistant, DatasetProfile, numbers_agree, numbers_cover, profile_table
from stratus.analytics.plan import Plan

ROWS = [
    {"day": "2024-01-05", "team": "Red", "points": 3, "score": 1.5},
    {"day": "2024-02-10", "team": "Blue", "points": 5, "score": 2.5},
    {"day": "2024-02-11", "team": "Red", "points": 7, "score": 4.0},
]


def _write(tmp_path: Path, fmt: str) -> Path:
    path = tmp_path / f"t.{fmt}"
    if fmt in {"csv", "tsv"}:
        sep = "," if fmt == "csv" else "\t"
        lines = [sep.join(ROWS[0])] + [sep.join(str(v) for v in r.values()) for r in ROWS]
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "json":
        path.write_text(json.dumps(ROWS))
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    else:  # parquet, written by DuckDB itself
        import duckdb

        src = _write(tmp_path, "csv")
        conn = duckdb.connect()
        conn.execute(f"COPY (SELECT * FROM read_csv('{src}')) TO '{path}' (FORMAT parquet)")  # noqa: S608
        conn.close()
    return path


@pytest.mark.parametrize("fmt", ["csv", "tsv", "json", "jsonl", "parquet"])
def test_every_format_profiles_and_answers(tmp_path: Path, fmt: str) -> None:
    path = _write(tmp_path, fmt)
    profile = profile_table(path, fmt)
    kinds = {c.name: c.semantic for c in profile.columns}
    assert profile.rows == 3
    assert kinds == {"day": "time", "team": "category", "points": "quantity", "score": "quantity"}
    day = profile.column("day")
    assert day is not None and day.min == "2024-01-05" and day.max == "2024-02-11"
    if fmt != "parquet":  # parquet stores a typed date: there is no text format
        assert day.date_format == "%Y-%m-%d"
    assert profile.column("team").values == ["Blue", "Red"]  # type: ignore[union-attr]
    assert DatasetProfile.from_dict(json.loads(json.dumps(profile.to_dict()))) == profile
    answer = Assistant(profile, path, fmt).answer("total points for Red in February")
    assert answer.kind == "answer" and answer.rows == [[7]], answer


def test_date_formats_are_detected(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("eu,us,stamp,code\n31.01.2024,01/31/2024,2024-01-31 10:15:00,2024-01-31x\n"
                    "01.02.2024,02/01/2024,2024-02-01 11:00:00,b\n")  # fmt: skip
    profile = profile_table(path)
    formats = {c.name: c.date_format for c in profile.columns}
    assert formats == {"eu": "%d.%m.%Y", "us": "%m/%d/%Y", "stamp": "%Y-%m-%d %H:%M:%S", "code": None}
    assert profile.column("stamp").dtype == "TIMESTAMP"  # type: ignore[union-attr]
    answer = Assistant(profile, path).answer("how many rows where stamp is in February 2024")
    assert answer.rows == [[1]]


def test_semantic_types(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    lines = ["id,customer_id,name,note,amount"]
    lines += [f"{i},C{i},name{i},words number {i},{i * 2}" for i in range(150)]
    path.write_text("\n".join(lines) + "\n")
    kinds = {c.name: c.semantic for c in profile_table(path).columns}
    assert kinds == {"id": "id", "customer_id": "id", "name": "id", "note": "text", "amount": "quantity"}


@pytest.fixture
def weird(tmp_path: Path) -> Assistant:
    """A column name with a quote and a space, and a value that looks like SQL."""
    path = tmp_path / "w.csv"
    path.write_text('"odd ""name""",region,amount\nx,North,1\ny,"South\'; DROP TABLE data; --",2\nz,East,4\n')
    return Assistant(profile_table(path), path)


def test_values_are_parameters_and_identifiers_are_quoted(weird: Assistant) -> None:
    answer = weird.answer("total amount by odd name")
    assert answer.kind == "answer", answer.text
    assert '"odd ""name"""' in (answer.query or "")
    sql_value = "South'; DROP TABLE data; --"
    answer = weird.answer(f"total amount where region is '{sql_value}'")
    assert answer.kind == "answer", answer.text
    assert sql_value in answer.params and sql_value not in (answer.query or "")
    assert answer.rows == [[2]]
    assert weird.answer("how many rows").rows == [[3]]  # the table is still there


def test_the_database_is_locked_down(weird: Assistant, tmp_path: Path) -> None:
    import duckdb

    conn = weird.connection()
    secret = tmp_path / "secret.csv"
    secret.write_text("a\n1\n")
    for sql in (
        f"SELECT * FROM read_csv('{secret}')",  # noqa: S608
        f"COPY data TO '{tmp_path / 'out.csv'}'",
        f"ATTACH '{tmp_path / 'x.db'}'",
        "INSTALL httpfs",
        "LOAD httpfs",
        "SET enable_external_access = true",
        "SET autoload_known_extensions = true",
        "RESET lock_configuration",
    ):
        with pytest.raises(duckdb.Error):
            conn.execute(sql)
    assert not (tmp_path / "out.csv").exists()


def test_a_stored_plan_is_checked(weird: Assistant) -> None:
    good = weird.answer("total amount by region").plan
    assert good is not None and Plan.from_dict(good).to_dict() == good
    for bad in (
        {**good, "aggregate": "sum); DROP TABLE data; --"},
        {**good, "group_by": [{"column": "region", "grain": "minute'"}]},
        {**good, "filters": [{"column": "region", "op": "LIKE", "values": ["%"]}]},
        {**good, "limit": "1; --"},
    ):
        with pytest.raises(ValueError):
            Plan.from_dict(bad)
    # a follow-up on a broken or foreign plan is answered as a new question
    answer = weird.answer("and for the North?", {**good, "measures": ["no_such_column"]})
    assert answer.kind in {"answer", "clarify"}
    answer = weird.answer("total amount", {"aggregate": "nonsense"})
    assert answer.kind == "answer" and answer.rows == [[7]]


@pytest.mark.parametrize(
    ("sentence", "numbers", "agrees"),
    [
        ("Total revenue was 12,345.68.", [12345.678], True),
        ("Total revenue was about 12,346.", [12345.678], True),
        ("Revenue was 12.3k, or 12.3 thousand.", [12345.678], True),
        ("That is 25% of the total.", [0.25], True),
        ("That is 25 percent.", [25.0], True),
        ("Revenue was 1.2 million in Q3 2024.", [1234567.0, 3, 2024], True),
        ("Total revenue was 12,345.69.", [12345.678], False),
        ("Total revenue was 13,000.", [12345.678], False),
        ("It fell by -5 units.", [5.0], False),
        ("It fell by -5 units.", [-5.0], True),
        ("No numbers here.", [], True),
        ("The South leads with 41,200.50 on 2024-07-01.", [41200.5, 2024, 7, 1], True),
        ("The South leads with 41,200.50 in 2023.", [41200.5, 2024], False),
        ("About three thousand orders.", [3012.0], True),
        ("About three thousand orders.", [3600.0], False),
        ("Twenty-five orders, one of them large.", [25.0], True),
        ("Twenty-six orders.", [25.0], False),
        ("Two hundred and five rows.", [205.0], True),
    ],
)
def test_numbers_agree(sentence: str, numbers: list[float], agrees: bool) -> None:
    assert numbers_agree(sentence, numbers) is agrees


@pytest.mark.parametrize(
    ("sentence", "values", "covers"),
    [
        ("East 300, North 500, South 200 and West 1,300.", [300.0, 500.0, 200.0, 1300.0], True),
        ("The total sales by region is 1,300.", [300.0, 500.0, 200.0, 1300.0], False),
        ("North leads with 1.3k.", [1300.0], True),
    ],
)
def test_numbers_cover(sentence: str, values: list[float], covers: bool) -> None:
    assert numbers_cover(sentence, values) is covers


def test_every_answer_text_agrees_with_its_numbers(weird: Assistant) -> None:
    for q in ("total amount by region", "average amount", "how many rows", "highest amount"):
        a = weird.answer(q)
        assert numbers_agree(a.text, a.numbers), a


def test_charts_follow_the_result_shape(tmp_path: Path) -> None:
    path = _write(tmp_path, "csv")
    a = Assistant(profile_table(path), path)
    shapes: dict[str, Any] = {
        "total points by team": "bar",
        "total points by month": "line",
        "points vs score": "point",
        "total points": None,
    }
    for question, mark in shapes.items():
        chart = a.answer(question).chart
        got = (
            None
            if chart is None
            else chart["mark"]
            if isinstance(chart["mark"], str)
            else chart["mark"]["type"]
        )
        assert got == mark, (question, chart)


def test_importing_the_engine_loads_nothing_heavy() -> None:
    code = "import sys, stratus.analytics; print(sorted(m for m in ('duckdb', 'pandas', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_two_date_columns_and_a_value_in_two_columns(tmp_path: Path) -> None:
    path = tmp_path / "games.csv"
    path.write_text(
        "ordered,shipped,home,away,amount\n2024-01-01,2024-01-03,Red,Blue,5\n2024-01-02,2024-02-04,Blue,Green,7\n"
    )
    a = Assistant(profile_table(path), path)
    asked = a.answer("total amount in January")
    assert asked.kind == "clarify" and "ordered or shipped" in asked.text
    assert a.answer("total amount where shipped is in February").rows == [[7]]
    assert a.answer("total amount by shipped month").rows == [["2024-01-01", 5], ["2024-02-01", 7]]
    assert a.answer("When was the earliest shipped date?").text == "The earliest shipped is 2024-01-03."
    asked = a.answer("total amount for Blue")
    assert asked.kind == "clarify" and "away and home" in asked.text
    assert a.answer("total amount for Blue at home").rows == [[7]]
    assert a.answer("total amount for away team Blue").rows == [[5]]


def test_overall_drops_the_grouping(weird: Assistant) -> None:
    grouped = weird.answer("total amount by region")
    assert len(grouped.rows) == 3
    assert weird.answer("overall", grouped.plan).rows == [[7]]


def test_booleans_spaces_and_nulls(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(
        json.dumps(
            [
                {
                    "Unit Price": 2.5,
                    "In Stock": True,
                    "Store Name": "Main St",
                    "amount": 3,
                    "when": "2024-05-01",
                },
                {
                    "Unit Price": None,
                    "In Stock": False,
                    "Store Name": "Elm Rd",
                    "amount": 4,
                    "when": "2024-05-02",
                },
                {"Unit Price": 4.0, "In Stock": True, "Store Name": None, "amount": None, "when": None},
            ]
        )
    )
    profile = profile_table(path, "json")
    stock = profile.column("In Stock")
    assert stock is not None and stock.semantic == "category" and stock.values == ["false", "true"]
    assert profile.column("Unit Price").nulls == 1  # type: ignore[union-attr]
    a = Assistant(profile, path, "json")
    assert a.answer("average unit price for Main St").rows == [[2.5]]
    assert a.answer("how many rows where in stock is true").rows == [[2]]
    grouped = a.answer("average unit price by in stock")
    assert grouped.rows == [[False, None], [True, 3.25]]
    assert grouped.text == "Average Unit Price by In Stock: false: (none); true: 3.25."
    assert a.answer("total amount in May 2024").rows == [[7]]


def test_a_long_question_is_asked_to_be_shorter(weird: Assistant) -> None:
    answer = weird.answer("total amount for North " * 100)
    assert answer.kind == "clarify" and "1000 characters" in answer.text


def test_a_late_contradicting_row_and_unreadable_files(tmp_path: Path) -> None:
    from stratus.analytics import TableError

    path = tmp_path / "late.csv"
    path.write_text("n,label\n" + "".join(f"{i},x\n" for i in range(30000)) + "oops,y\n")
    profile = profile_table(path)  # the sample says BIGINT; line 30,002 says otherwise: read again
    assert profile.rows == 30001 and profile.column("n").dtype == "VARCHAR"  # type: ignore[union-attr]
    assert Assistant(profile, path).answer("how many rows").rows == [[30001]]
    bad = tmp_path / "bad.json"
    bad.write_text('[{"a": 1}, oops')
    with pytest.raises(TableError, match="Cannot read the json file"):
        profile_table(bad, "json")
    with pytest.raises(TableError, match="Unsupported table format"):
        profile_table(bad, "xlsx")
    with pytest.raises(TableError):
        Assistant(profile, tmp_path / "gone.csv").answer("how many rows")
