"""Fit the input encoding on the training split and turn rows into tensors.

The encoding is fitted here (means and deviations, the top categories) but applied by
`stratus.ml.portable_mlp`, the code that serves the model: training and serving encode identically
by construction. Statistics come from the training split only, so validation scores are honest.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Any

import torch

from stratus.ml import portable_mlp
from stratus_worker.dataset import Table

MAX_CATEGORIES = 50  # the most frequent; the rest share the "other" input


@dataclass
class Prepared:
    """The encoded splits and what it takes to undo the target's encoding."""

    preprocessing: dict[str, dict[str, Any]]
    x_train: torch.Tensor
    y_train: torch.Tensor  # class indices (long), or the standardized target (float, [n, 1])
    x_val: torch.Tensor
    y_val: torch.Tensor
    labels: list[str]  # classification only
    target_mean: float = 0.0  # regression only
    target_std: float = 1.0


def prepare(table: Table, train: list[dict[str, Any]], val: list[dict[str, Any]]) -> Prepared:
    preprocessing = fit_preprocessing(train, table.features, table.numeric)
    encoder = portable_mlp.encoder(table.features, preprocessing)
    x_train = torch.tensor([encoder.encode(row) for row in train], dtype=torch.float32)
    x_val = torch.tensor([encoder.encode(row) for row in val], dtype=torch.float32)
    if table.objective == "classification":
        keys = [portable_mlp.category_key(row[table.target]) for row in train + val]
        labels = sorted(set(keys), key=_label_order)
        index = {label: i for i, label in enumerate(labels)}
        y = torch.tensor([index[key] for key in keys], dtype=torch.long)
        return Prepared(preprocessing, x_train, y[: len(train)], x_val, y[len(train) :], labels)
    values = [_number(row[table.target]) for row in train + val]
    mean, std = _mean_std(values[: len(train)])
    y = torch.tensor([[(v - mean) / std] for v in values], dtype=torch.float32)
    return Prepared(preprocessing, x_train, y[: len(train)], x_val, y[len(train) :], [], mean, std)


def fit_preprocessing(
    rows: list[dict[str, Any]], features: list[str], numeric: frozenset[str]
) -> dict[str, dict[str, Any]]:
    """Per feature: {"kind": "numeric", "mean", "std"} or {"kind": "categorical", "categories"}."""
    spec: dict[str, dict[str, Any]] = {}
    for name in features:
        if name in numeric:
            values = [v for v in (_number_or_none(row[name]) for row in rows) if v is not None]
            mean, std = _mean_std(values)
            spec[name] = {"kind": "numeric", "mean": mean, "std": std}
        else:
            counts = Counter(portable_mlp.category_key(row[name]) for row in rows)
            top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:MAX_CATEGORIES]
            spec[name] = {"kind": "categorical", "categories": [category for category, _ in top]}
    return spec


def _mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and population deviation; a constant (or empty) column gets std 1, so it encodes as 0."""
    if not values:
        return 0.0, 1.0
    mean = math.fsum(values) / len(values)
    std = math.sqrt(math.fsum((v - mean) ** 2 for v in values) / len(values))
    return mean, std if std > 1e-12 else 1.0


def _number_or_none(value: Any) -> float | None:
    try:
        return portable_mlp.numeric_value(value)
    except ValueError:
        return None


def _number(value: Any) -> float:
    real = portable_mlp.numeric_value(value)
    assert real is not None  # Table keeps only rows with a target
    return real


def _label_order(label: str) -> tuple[int, float, str]:
    """Numeric labels in numeric order (2 before 10), then the rest alphabetically."""
    try:
        return 0, float(label), label
    except ValueError:
        return 1, 0.0, label
