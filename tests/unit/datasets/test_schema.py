"""Column type inference: per value (`add`) and per batch (`add_many`) must always agree."""

from __future__ import annotations

import math
import random
from datetime import datetime

import pytest

from stratus.datasets.schema import ColumnStats, convert, infer_type, jsonable


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["1", "-2", "+3", "007", " 4 "], "integer"),
        (["1", "2.5"], "float"),
        (["1e5", ".5", "1.", "-0.25", "NaN", "inf", "-Infinity"], "float"),
        (["true", "False", "YES", "no"], "boolean"),
        (["1", "0"], "integer"),  # 1/0 are numbers, not booleans
        (
            ["2024-01-31", "2024-02-29T10:30", "2024-03-01 08:00:00.250+02:00", "2024-04-01T00:00:00Z"],
            "datetime",
        ),
        (["2023-02-29"], "string"),  # not a day of the calendar
        (["2024-04-31"], "string"),
        (["2024-13-01"], "string"),
        (["2024-01-01T24:00"], "string"),
        (["01/02/2024"], "string"),  # only ISO dates are dates
        (["1", "true"], "string"),
        (["1", "2024-01-01"], "string"),
        (["1", "x"], "string"),
        (["1", " "], "string"),  # blank is not empty: only "" is null
        (["", "", ""], "string"),  # nothing to go on
        (["", "3", ""], "integer"),  # nulls never narrow the type
        (["1\n2", "3"], "string"),
        (["²"], "string"),  # a Unicode digit int() would take, but no CSV tool would write
        ([1, 2, None], "integer"),
        ([1, 2.5], "float"),
        ([True, False], "boolean"),
        ([True, 1], "string"),
        ([{"a": 1}], "string"),
        ([[1, 2]], "string"),
        (["2024-01-01", None], "datetime"),
    ],
)
def test_infer_type(values: list[object], expected: str) -> None:
    assert infer_type(values) == expected


def test_null_counts() -> None:
    stats = ColumnStats()
    for value in ["1", "", None, "2", ""]:
        stats.add(value)
    assert (stats.nulls, stats.non_null, stats.type) == (3, 2, "integer")


def test_batches_narrow_across_calls() -> None:
    # GIVEN an integer column whose float shows up in a later batch
    stats = ColumnStats()
    stats.add_many(["1", "2", ""])
    assert stats.type == "integer"
    stats.add_many(["3.5", "4"])
    # THEN the column widens to float, and a later non-number makes it a string for good
    assert stats.type == "float"
    stats.add_many(["x"])
    stats.add_many(["5"])
    assert (stats.type, stats.nulls, stats.non_null) == ("string", 1, 6)


TOKENS = [
    "",
    " ",
    "0",
    "12",
    "-3",
    "+4",
    " 5",
    "6 ",
    "1.5",
    "-.5",
    "2.",
    "1e3",
    "1E-3",
    "e3",
    ".",
    "-",
    "nan",
    "Inf",
    "infinity",
    "infinit",
    "true",
    "FALSE",
    "yes",
    "No",
    "t",
    "2024-02-29",
    "2023-02-29",
    "2024-06-31",
    "2024-12-31T23:59:59.999999",
    "2024-01-01 10:00+01",
    "2024-01-01T10:00-0530",
    "2024-01-01T10:00:60",
    "0000-01-01",
    "x",
    "1,5",
    "1_000",
    "١٢",
]


def test_add_many_agrees_with_add_on_random_columns() -> None:
    rng = random.Random(42)
    for _ in range(3000):
        # Columns drawn from a small pool, so that many of them are all one type.
        pool = rng.sample(TOKENS, rng.randint(1, 4))
        values = [rng.choice(pool) for _ in range(rng.randint(1, 12))]
        one, many = ColumnStats(), ColumnStats()
        for value in values:
            one.add(value)
        many.add_many(values)
        assert (one.type, one.nulls, one.non_null) == (many.type, many.nulls, many.non_null), values


def test_every_inferred_datetime_is_a_python_datetime() -> None:
    for token in TOKENS:
        if token and infer_type([token]) == "datetime":
            datetime.fromisoformat(token.strip())


def test_every_inferred_number_converts() -> None:
    for token in TOKENS:
        kind = infer_type([token])
        if kind in ("integer", "float"):
            convert(token, kind)


@pytest.mark.parametrize(
    ("text", "type_", "expected"),
    [
        ("", "integer", None),
        (" 42 ", "integer", 42),
        ("99999999999999999999", "integer", "99999999999999999999"),  # past int64: kept as text
        ("2.5", "float", 2.5),
        ("7", "float", 7.0),
        ("nan", "float", None),
        ("Yes", "boolean", True),
        ("false", "boolean", False),
        ("2024-01-01", "datetime", "2024-01-01"),
        ("abc", "string", "abc"),
        ("abc", "integer", "abc"),  # types from another version of the file: kept as text
        ("abc", "float", "abc"),
    ],
)
def test_convert(text: str, type_: str, expected: object) -> None:
    assert convert(text, type_) == expected


def test_jsonable_makes_parsed_json_storable() -> None:
    value = {"big": 2**70, "nan": math.nan, "ok": [1, 2.5, True, None, "s"], "nested": {"inf": math.inf}}
    assert jsonable(value) == {
        "big": str(2**70),
        "nan": None,
        "ok": [1, 2.5, True, None, "s"],
        "nested": {"inf": None},
    }
