"""stratus.ml.portable_mlp: the API's torch-free inference, held to torch's answers on the same rows."""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
import torch

from stratus.errors import ValidationFailed
from stratus.ml import portable_mlp
from stratus.ml.portable_mlp import category_key
from stratus_worker.model import build_mlp, export_layers
from stratus_worker.predict import predict_rows
from tests.unit.worker.harness import Harness
from tests.unit.worker.synthetic import classification_csv, regression_csv

PREPROCESSING: dict[str, Any] = {
    "size": {"kind": "numeric", "mean": 10.0, "std": 2.0},
    "color": {"kind": "categorical", "categories": ["red", "blue", "missing"]},
    "flag": {"kind": "categorical", "categories": ["true"]},
}
FEATURES = ["size", "color", "flag"]
ROWS: list[dict[str, Any]] = [
    {"size": 12, "color": "red", "flag": True},
    {"size": "7.5", "color": "blue", "flag": "False", "ignored": "x"},
    {"size": None, "color": None, "flag": "TRUE"},
    {"size": "", "color": "purple", "flag": None},
    {"size": 1e6, "color": "  red ", "flag": 1},
]


def doc_for(model: torch.nn.Sequential, objective: str, **extra: Any) -> dict[str, Any]:
    return {
        "format": "stratus-mlp/1",
        "objective": objective,
        "target": "y",
        "features": FEATURES,
        "preprocessing": PREPROCESSING,
        "layers": export_layers(model),
        **extra,
    }


def test_encoding_standardizes_numbers_and_one_hot_encodes_categories() -> None:
    encoder = portable_mlp.encoder(FEATURES, PREPROCESSING)
    assert encoder.width == 1 + 4 + 2
    assert encoder.encode(ROWS[0]) == [1.0, 1, 0, 0, 0, 1, 0]
    assert encoder.encode(ROWS[1]) == [-1.25, 0, 1, 0, 0, 0, 1]  # unseen "false": the "other" input
    assert encoder.encode(ROWS[2]) == [0.0, 0, 0, 1, 0, 1, 0]  # missing number: the mean; None: "missing"
    assert encoder.encode(ROWS[3]) == [0.0, 0, 0, 0, 1, 0, 1]  # unseen category: "other"


def test_category_keys_agree_across_sources() -> None:
    assert category_key(True) == category_key("true") == category_key(" True ") == "true"
    assert category_key(3) == category_key(3.0) == category_key("3") == "3"
    assert category_key(None) == category_key("") == category_key(float("nan")) == "missing"
    assert category_key(2.5) == "2.5" and category_key({"b": 1, "a": 2}) == '{"a":2,"b":1}'


@pytest.mark.parametrize(("hidden", "dropout"), [([], 0.0), ([16], 0.0), ([32, 16, 8], 0.3)])
def test_classification_matches_torch(hidden: list[int], dropout: float) -> None:
    torch.manual_seed(len(hidden))
    model = build_mlp(7, hidden, 3, dropout)
    doc = doc_for(model, "classification", labels=["a", "b", "c"])
    expected = predict_rows(model, doc, ROWS)
    got = portable_mlp.load(doc).predict(ROWS)
    for mine, reference in zip(got, expected, strict=True):
        assert mine.label == reference.label
        assert mine.confidence == pytest.approx(reference.confidence, abs=1e-5)
        assert mine.probabilities is not None and reference.probabilities is not None
        assert mine.probabilities == pytest.approx(reference.probabilities, abs=1e-5)
        assert math.fsum(mine.probabilities.values()) == pytest.approx(1.0)
        assert mine.confidence == max(mine.probabilities.values())


def test_regression_matches_torch() -> None:
    torch.manual_seed(5)
    model = build_mlp(7, [16, 8], 1, 0.0)
    doc = doc_for(model, "regression", target_scaling={"mean": 100.0, "std": 15.0})
    expected = [p.label for p in predict_rows(model, doc, ROWS)]
    got = portable_mlp.load(doc).predict(ROWS)
    # float32 (torch) against float64: 1e-5 in the target's standard units, relative for the outlier row
    assert [p.label for p in got] == pytest.approx(expected, rel=1e-6, abs=1e-5 * 15)
    assert all(p.confidence is None and p.probabilities is None for p in got)
    # A document written before the rename names the objective `task`: it serves the same.
    legacy = {**{k: v for k, v in doc.items() if k != "objective"}, "task": "regression"}
    assert [p.label for p in portable_mlp.load(legacy).predict(ROWS)] == [p.label for p in got]
    assert [p.label for p in predict_rows(model, legacy, ROWS)] == expected


@pytest.mark.parametrize(("csv", "target"), [(classification_csv, "label"), (regression_csv, "price")])
def test_trained_models_match_torch(harness: Harness, csv: Any, target: str) -> None:
    key = harness.upload("datasets/data.csv", csv())
    run = {"dataset_key": key, "target": target, "hyperparameters": {"epochs": 3, "dropout": 0.2}, "seed": 3}
    assert harness.run(run) == 0
    doc = harness.read_json("models/job-1/model.json")
    checkpoint = torch.load(harness.root / "work" / "job-1" / "checkpoint.pt", weights_only=False)
    outputs = len(doc.get("labels", [])) or 1
    model = build_mlp(len(doc["layers"][0]["weight"][0]), [64, 32], outputs, 0.2)
    model.load_state_dict(checkpoint["model_state"])
    rows = harness.read_rows("datasets/data.csv")[:50]
    expected = predict_rows(model, doc, rows)
    got = portable_mlp.load(doc).predict(rows)
    for mine, reference in zip(got, expected, strict=True):
        if isinstance(reference.label, float):
            assert mine.label == pytest.approx(reference.label, abs=1e-5 * doc["target_scaling"]["std"])
        else:
            assert mine.label == reference.label
            assert mine.probabilities == pytest.approx(reference.probabilities, abs=1e-5)


def test_missing_features_are_named() -> None:
    model = portable_mlp.load(doc_for(build_mlp(7, [4], 2, 0.0), "classification", labels=["n", "y"]))
    with pytest.raises(ValidationFailed) as caught:
        model.predict([{"size": 1}])
    assert caught.value.message == "Missing features 'color', 'flag'"
    assert caught.value.details == [
        {"field": "color", "message": "required feature is missing"},
        {"field": "flag", "message": "required feature is missing"},
    ]
    with pytest.raises(ValidationFailed) as caught:
        model.predict([ROWS[0], {"color": "red", "flag": True}])
    assert caught.value.message == "Missing feature 'size' (row 1)"
    with pytest.raises(ValidationFailed) as caught:
        model.predict([{**ROWS[0], "size": "large"}])
    assert caught.value.details == [{"field": "size", "message": "must be a number"}]


def test_malformed_documents_are_refused() -> None:
    good = doc_for(build_mlp(7, [4], 2, 0.0), "classification", labels=["n", "y"])
    with pytest.raises(ValueError, match="Unsupported model format"):
        portable_mlp.load({**good, "format": "onnx"})
    with pytest.raises(ValueError, match="2 outputs for 3 expected"):
        portable_mlp.load({**good, "labels": ["a", "b", "c"]})
    numeric_flag = {**PREPROCESSING, "flag": {"kind": "numeric", "mean": 0, "std": 0}}
    with pytest.raises(ValueError, match="layer 1 takes 7 inputs, 6 reach it"):
        portable_mlp.load({**good, "preprocessing": numeric_flag})
    with pytest.raises(ValueError, match="Invalid stratus-mlp/1 model: KeyError"):
        portable_mlp.load({"format": "stratus-mlp/1", "objective": "regression"})
    with pytest.raises(ValueError, match="unknown objective 'ranking'"):
        portable_mlp.load({**good, "objective": "ranking"})


def test_importing_it_loads_neither_torch_nor_numpy() -> None:
    probe = "import sys, stratus.ml.portable_mlp; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert output.strip() == "[]"
