"""Serve the worker's tabular MLPs from their `model.json` in plain Python.

The worker trains with torch and exports the network as a portable document (format "stratus-mlp/1");
the API predicts from that document alone, without torch or numpy, so the Lambda stays small and its
cold start short. A network of a few thousand weights costs well under a millisecond a row this way.

The input encoding lives here too, and the worker encodes its training rows with this very code: what
a model was trained on and what it is served cannot drift apart.

Format "stratus-mlp/1":

- `features`: the input columns, in order; `preprocessing[name]` says how each becomes inputs:
  `{"kind": "numeric", "mean", "std"}` is one input, (x - mean) / std, a missing value (null, "")
  counting as the mean; `{"kind": "categorical", "categories": [...]}` is len(categories) + 1 inputs,
  one-hot, the last standing for any other value. Values are matched by `category_key`, so a missing
  value is the category "missing".
- `layers`: `[{"weight": [[...] one row per output], "bias": [...], "activation": "relu" | null}]`,
  applied in order (torch's `nn.Linear` layout: weight[out][in]).
- `objective`: "classification": the outputs are logits over `labels`; "regression": one output, in
  standard units of the target, mapped back with `target_scaling` {"mean", "std"}. Documents written
  before the rename name it `task`; they load the same.
"""

from __future__ import annotations

import json
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from stratus.errors import ValidationFailed

FORMAT = "stratus-mlp/1"
MISSING = "missing"  # the category of a missing value
Objective = Literal["classification", "regression"]


def category_key(value: Any) -> str:
    """The category a value falls in. Booleans and whole floats are spelled one way whatever their
    source (CSV text, JSON), so `true`, "True" and 1.0 vs 1 match at serving time as in training."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            return MISSING
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return MISSING
        return text.lower() if text.lower() in ("true", "false") else text
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


def numeric_value(value: Any) -> float | None:
    """A numeric feature's value; None when missing. ValueError when it is not a number at all."""
    if value is None or isinstance(value, bool | int | float):
        real = None if value is None else float(value)
        return real if real is not None and math.isfinite(real) else None
    if isinstance(value, str):
        if not value.strip():
            return None
        real = float(value)  # ValueError for text
        return real if math.isfinite(real) else None
    raise ValueError(f"expected a number, got {type(value).__name__}")


@dataclass(frozen=True)
class Prediction:
    """One row's answer: the class (classification) or value (regression)."""

    label: str | float
    confidence: float | None = None  # the winning class's probability; None for regression
    probabilities: dict[str, float] | None = None  # every class's probability; None for regression

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "confidence": self.confidence, "probabilities": self.probabilities}


@dataclass(frozen=True)
class _Numeric:
    mean: float
    std: float
    width: int = 1


@dataclass(frozen=True)
class _Categorical:
    index: dict[str, int]
    width: int


_Column = _Numeric | _Categorical


@dataclass(frozen=True)
class _Layer:
    weight: list[list[float]]
    bias: list[float]
    relu: bool


@dataclass(frozen=True)
class Encoder:
    """Turns a row of feature values into the network's input vector."""

    features: tuple[str, ...]
    columns: tuple[_Column, ...] = field(repr=False)

    @property
    def width(self) -> int:
        return sum(column.width for column in self.columns)

    def encode(self, row: object, position: int | None = None) -> list[float]:
        """ValidationFailed naming the feature when one is absent or a numeric one holds text;
        `position` (the row's index in a batch) goes into the message."""
        where = "" if position is None else f" (row {position})"
        if not isinstance(row, Mapping):
            raise ValidationFailed(
                f"Each row must be an object of feature values{where}",
                details=[{"field": "rows", "message": f"expected an object{where}"}],
            )
        missing = [name for name in self.features if name not in row]
        if missing:
            names = ", ".join(f"'{name}'" for name in missing)
            raise ValidationFailed(
                f"Missing feature{'s' if len(missing) > 1 else ''} {names}{where}",
                details=[
                    {"field": name, "message": f"required feature is missing{where}"} for name in missing
                ],
            )
        x: list[float] = []
        for name, column in zip(self.features, self.columns, strict=True):
            value = row[name]
            if isinstance(column, _Numeric):
                try:
                    real = numeric_value(value)
                except ValueError:
                    raise ValidationFailed(
                        f"Feature '{name}' must be a number{where}",
                        details=[{"field": name, "message": f"must be a number{where}"}],
                    ) from None
                x.append(0.0 if real is None else (real - column.mean) / column.std)
            else:
                one_hot = [0.0] * column.width
                one_hot[column.index.get(category_key(value), column.width - 1)] = 1.0
                x.extend(one_hot)
        return x


def encoder(features: Sequence[str], preprocessing: Mapping[str, Mapping[str, Any]]) -> Encoder:
    """The encoder of a model document's `features` and `preprocessing` (the worker builds one before
    it has a network, to encode its training rows)."""
    names = tuple(str(name) for name in features)
    return Encoder(features=names, columns=tuple(_column(name, preprocessing[name]) for name in names))


@dataclass(frozen=True)
class PortableMLP:
    """A loaded model document. Immutable, so one instance can serve concurrent requests."""

    objective: Objective
    target: str
    labels: tuple[str, ...]
    target_mean: float
    target_std: float
    encoder: Encoder = field(repr=False)
    _layers: tuple[_Layer, ...] = field(repr=False)

    @property
    def features(self) -> tuple[str, ...]:
        return self.encoder.features

    def predict(self, rows: Sequence[Mapping[str, Any]]) -> list[Prediction]:
        """Predict every row; ValidationFailed (naming the feature) if any row lacks a feature or holds
        a non-number in a numeric one. Extra keys (the target, ids) are ignored."""
        single = len(rows) == 1
        encoded = [self.encoder.encode(row, None if single else i) for i, row in enumerate(rows)]
        return [self._prediction(self.forward(x)) for x in encoded]

    def forward(self, x: list[float]) -> list[float]:
        """The raw outputs (logits, or the standardized target) for one encoded row."""
        for layer in self._layers:
            x = [b + sum(map(operator.mul, w, x)) for w, b in zip(layer.weight, layer.bias, strict=True)]
            if layer.relu:
                x = [v if v > 0.0 else 0.0 for v in x]
        return x

    def _prediction(self, outputs: list[float]) -> Prediction:
        if self.objective == "regression":
            return Prediction(label=outputs[0] * self.target_std + self.target_mean)
        probabilities = softmax(outputs)
        best = max(range(len(probabilities)), key=probabilities.__getitem__)
        return Prediction(
            label=self.labels[best],
            confidence=probabilities[best],
            probabilities=dict(zip(self.labels, probabilities, strict=True)),
        )


def softmax(logits: list[float]) -> list[float]:
    top = max(logits)
    exps = [math.exp(v - top) for v in logits]
    total = sum(exps)
    return [v / total for v in exps]


def objective_of(doc: Mapping[str, Any]) -> Any:
    """The document's objective; `task` in documents written before the rename."""
    return doc["objective"] if "objective" in doc else doc["task"]


def load(doc: Mapping[str, Any]) -> PortableMLP:
    """A model from its document; ValueError when it is not a well-formed stratus-mlp/1 model."""
    try:
        return _load(doc)
    except (KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"Invalid {FORMAT} model: {type(e).__name__}: {e}") from e


def _load(doc: Mapping[str, Any]) -> PortableMLP:
    if doc.get("format") != FORMAT:
        raise ValueError(f"Unsupported model format {doc.get('format')!r}; expected {FORMAT!r}")
    objective = objective_of(doc)
    if objective not in ("classification", "regression"):
        raise ValueError(f"Invalid {FORMAT} model: unknown objective {objective!r}")
    inputs = encoder(doc["features"], doc["preprocessing"])
    layers = tuple(
        _Layer(
            weight=[[float(v) for v in row] for row in layer["weight"]],
            bias=[float(v) for v in layer["bias"]],
            relu=layer.get("activation") == "relu",
        )
        for layer in doc["layers"]
    )
    labels = tuple(str(label) for label in doc.get("labels") or ())
    scaling = doc.get("target_scaling") or {}
    model = PortableMLP(
        objective=objective,
        target=str(doc.get("target", "")),
        labels=labels,
        target_mean=float(scaling.get("mean", 0.0)),
        target_std=float(scaling.get("std", 1.0)),
        encoder=inputs,
        _layers=layers,
    )
    _check_shapes(model)
    return model


def _column(name: str, spec: Mapping[str, Any]) -> _Column:
    if spec["kind"] == "numeric":
        std = float(spec["std"])
        return _Numeric(mean=float(spec["mean"]), std=std if std > 0 else 1.0)
    if spec["kind"] == "categorical":
        categories = [str(c) for c in spec["categories"]]
        return _Categorical(index={c: i for i, c in enumerate(categories)}, width=len(categories) + 1)
    raise ValueError(f"Invalid {FORMAT} model: feature {name!r} has unknown kind {spec['kind']!r}")


def _check_shapes(model: PortableMLP) -> None:
    width = model.encoder.width
    for number, layer in enumerate(model._layers, 1):
        if not layer.weight or len(layer.bias) != len(layer.weight):
            raise ValueError(f"Invalid {FORMAT} model: layer {number} has mismatched weight and bias")
        if any(len(row) != width for row in layer.weight):
            raise ValueError(
                f"Invalid {FORMAT} model: layer {number} takes {len(layer.weight[0])} inputs, {width} reach it"
            )
        width = len(layer.weight)
    expected = len(model.labels) if model.objective == "classification" else 1
    if not model._layers or width != expected:
        raise ValueError(f"Invalid {FORMAT} model: {width} outputs for {expected} expected")
