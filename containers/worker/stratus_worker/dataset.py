"""Load the training table: download the dataset, read it with the same parsers the API used when it
was uploaded (so column types agree), pick target and features, and decide the objective
(classification or regression).

Every problem a user can fix (a wrong target name, a text target for regression, too few rows) is a
JobFailed whose message says what to change.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from stratus.datasets.formats import DatasetFormat
from stratus.datasets.ingest import analyse, read_rows
from stratus.errors import InvalidInput, NotFound
from stratus.ml.portable_mlp import MISSING, category_key, numeric_value
from stratus_worker.params import Objective, TrainingParams
from stratus_worker.runtime import JobContext, JobFailed
from stratus_worker.storage import download

NUMERIC_TYPES = frozenset({"integer", "float"})
MAX_CLASS_INTEGERS = 20  # an integer target with at most this many values is a class label
MAX_CLASSES = 1000
MIN_ROWS = 10


@dataclass
class Table:
    rows: list[dict[str, Any]]  # only rows whose target is present; absent feature keys are None
    target: str
    features: list[str]
    numeric: frozenset[str]  # the numeric features; the others are categorical
    objective: Objective


def load_table(ctx: JobContext, params: TrainingParams) -> Table:
    fmt = DatasetFormat(params.format)
    path = ctx.workdir / f"dataset.{fmt}"
    try:
        download(ctx.storage, params.dataset_key, path)
    except NotFound:
        raise JobFailed(f"Dataset object '{params.dataset_key}' not found in storage") from None
    try:
        summary = analyse(path, fmt)
        if summary.kind != "tabular":
            raise JobFailed(f"Only tabular datasets can be trained on; this one holds {summary.kind}")
        types = {column.name: column.type for column in summary.columns}
        target = _target(params, summary.headers, summary.target)
        features = _features(params, summary.headers, target)
        # Numbers typed; everything else as the text it was written as, which is what a client sends
        # at prediction time ("yes" stays "yes", where the CSV typing would make it True).
        numeric = {name: kind for name, kind in types.items() if kind in NUMERIC_TYPES}
        rows = read_rows(path, fmt, offset=0, limit=summary.row_count, column_types=numeric)
    except InvalidInput as e:
        raise JobFailed(e.message) from None
    finally:
        path.unlink(missing_ok=True)
    objective = _objective(params.objective, target, types[target], rows)
    present = [row for row in rows if _has_target(row.get(target), objective)]
    if len(present) < MIN_ROWS:
        raise JobFailed(
            f"Only {len(present)} rows have a value in target column '{target}'; at least {MIN_ROWS} are needed"
        )
    return Table(
        rows=[{name: row.get(name) for name in [*features, target]} for row in present],
        target=target,
        features=features,
        numeric=frozenset(name for name in features if types[name] in NUMERIC_TYPES),
        objective=objective,
    )


def split(
    rows: list[dict[str, Any]], fraction: float, seed: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, validation): a seeded shuffle, at least one row on each side."""
    order = list(range(len(rows)))
    random.Random(seed).shuffle(order)
    held_out = min(max(1, round(len(rows) * fraction)), len(rows) - 1)
    return [rows[i] for i in order[held_out:]], [rows[i] for i in order[:held_out]]


def _target(params: TrainingParams, headers: list[str], guessed: str | None) -> str:
    target = params.target or guessed
    if target is None:
        raise JobFailed(
            "No target column given, and none is named target, label, class or y; "
            f"columns: {', '.join(headers)}"
        )
    if target not in headers:
        raise JobFailed(f"Target column '{target}' not found; columns: {', '.join(headers)}")
    return target


def _features(params: TrainingParams, headers: list[str], target: str) -> list[str]:
    if params.features is None:
        features = [name for name in headers if name != target]
    else:
        unknown = [name for name in params.features if name not in headers]
        if unknown:
            raise JobFailed(
                f"Feature column(s) {', '.join(map(repr, unknown))} not found; columns: {', '.join(headers)}"
            )
        if target in params.features:
            raise JobFailed(f"The target column '{target}' cannot also be a feature")
        features = list(dict.fromkeys(params.features))
    if not features:
        raise JobFailed("The dataset has no feature columns besides the target")
    return features


def _objective(
    requested: Objective | None, target: str, column_type: str, rows: list[dict[str, Any]]
) -> Objective:
    numeric = column_type in NUMERIC_TYPES
    if requested == "regression" and not numeric:
        raise JobFailed(f"Target column '{target}' must be numeric for regression")
    objective: Objective
    if requested is not None:
        objective = requested
    elif not numeric:
        objective = "classification"
    else:
        distinct = {row.get(target) for row in rows} - {None}
        objective = (
            "classification"
            if column_type == "integer" and len(distinct) <= MAX_CLASS_INTEGERS
            else "regression"
        )
    if objective == "classification":
        classes = {category_key(row.get(target)) for row in rows} - {MISSING}
        if len(classes) < 2:
            raise JobFailed(
                f"Target column '{target}' has {len(classes)} distinct value(s); classification needs at least 2"
            )
        if len(classes) > MAX_CLASSES:
            raise JobFailed(
                f"Target column '{target}' has {len(classes)} distinct values; classification supports at most "
                f"{MAX_CLASSES} (is it the right target, or a regression objective?)"
            )
    return objective


def _has_target(value: Any, objective: Objective) -> bool:
    if objective == "classification":
        return category_key(value) != MISSING
    try:
        return numeric_value(value) is not None
    except ValueError:
        return False
