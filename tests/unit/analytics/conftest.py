"""Three generated tables (sales, survey, sensor log), their profiles and assistants, once per session."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stratus.analytics import Assistant, DatasetProfile, profile_table
from tests.analytics_data import write_sales, write_sensors, write_survey


@dataclass
class Table:
    path: Path
    fmt: str
    profile: DatasetProfile
    assistant: Assistant
    frame: Any  # the same rows in pandas, read independently, for the expected numbers


@pytest.fixture(scope="session")
def tables(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Table]]:
    import pandas as pd

    root = tmp_path_factory.mktemp("analytics")
    sales = write_sales(root / "sales.csv")
    survey = write_survey(root / "survey.csv")
    sensors = write_sensors(root / "sensors.jsonl")
    frames = {
        "sales": pd.read_csv(sales, parse_dates=["date"]),
        "survey": pd.read_csv(survey).assign(
            submitted=lambda d: pd.to_datetime(d.submitted, format="%m/%d/%Y")
        ),
        "sensors": pd.read_json(sensors, lines=True).assign(timestamp=lambda d: pd.to_datetime(d.timestamp)),
    }
    out = {}
    for name, path, fmt in (
        ("sales", sales, "csv"),
        ("survey", survey, "csv"),
        ("sensors", sensors, "jsonl"),
    ):
        profile = profile_table(path, fmt)
        out[name] = Table(path, fmt, profile, Assistant(profile, path, fmt), frames[name])
    yield out
    for t in out.values():
        t.assistant.close()
