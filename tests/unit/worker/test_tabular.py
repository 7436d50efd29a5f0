"""The training kind, in-process: real torch training on small seeded tables, real local storage."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from stratus.capabilities import job_kinds
from stratus.ml import portable_mlp
from stratus.ports.events import STRATUS_SOURCE
from tests.unit.worker.harness import Harness
from tests.unit.worker.synthetic import classification_csv, noise_csv, regression_csv

PROGRESS, RESULT = "Stratus Job Progress", "Stratus Job Result"


def params(key: str, **overrides: Any) -> dict[str, Any]:
    hyper = {"epochs": 8, "batch_size": 32, "learning_rate": 0.01, **overrides.pop("hyperparameters", {})}
    return {"dataset_key": key, "dataset_format": "csv", "seed": 1, "hyperparameters": hyper, **overrides}


def test_classification_beats_the_majority_baseline(harness: Harness) -> None:
    key = harness.upload("datasets/clf.csv", classification_csv())
    assert harness.run(params(key, target="label", model_type="mlp")) == 0
    result = harness.sink.result
    assert result["status"] == "completed" and result["error"] is None
    metrics, baseline = result["final_metrics"], result["baseline"]
    assert metrics["accuracy"] >= baseline["majority_accuracy"] + 0.2
    assert (
        metrics["f1_macro"] > 0.8 and 0 < metrics["precision_macro"] <= 1 and 0 < metrics["recall_macro"] <= 1
    )
    assert metrics["validation_rows"] == 120 and metrics["train_rows"] == 480
    assert set(result["history"]) == {"loss", "val_loss", "accuracy", "val_accuracy"}
    assert all(len(values) == 8 for values in result["history"].values())
    assert result["artifacts"] == {
        "model": "models/job-1/model.json",
        "checkpoint": "models/job-1/checkpoint.pt",
        "metrics": "models/job-1/metrics.json",
    }
    assert all(harness.exists(key) for key in result["artifacts"].values())
    model = result["model"]
    assert model["objective"] == "classification" and model["model_type"] == "mlp"
    assert model["labels"] == ["no", "yes"]  # the CSV's own spelling, not the booleans ingest infers
    assert model["features"] == ["x1", "x2", "color"] and model["target"] == "label"
    architecture = model["architecture"]
    assert architecture["input_features"] == 3 and architecture["hidden_layers"] == [64, 32]
    assert architecture["output_classes"] == 2
    assert architecture["parameters"] == (6 * 64 + 64) + (64 * 32 + 32) + (32 * 2 + 2)
    assert model["size_mb"] > 0 and result["duration_s"] > 0


def test_model_json_serves_what_was_trained(harness: Harness) -> None:
    key = harness.upload("datasets/clf.csv", classification_csv())
    assert harness.run(params(key, target="label")) == 0
    doc = harness.read_json("models/job-1/model.json")
    assert doc["format"] == "stratus-mlp/1" and doc["objective"] == "classification"
    assert doc["preprocessing"]["x1"]["kind"] == "numeric"
    color = doc["preprocessing"]["color"]
    assert color["kind"] == "categorical" and sorted(color["categories"]) == ["blue", "green", "red"]
    model = portable_mlp.load(doc)
    rows = [{"x1": 2.0, "x2": 1.5, "color": "red"}, {"x1": -2.0, "x2": -1.5, "color": "blue"}]
    assert [p.label for p in model.predict(rows)] == ["yes", "no"]
    metrics = harness.read_json("models/job-1/metrics.json")
    assert metrics["final_metrics"] == harness.sink.result["final_metrics"]
    checkpoint = torch.load(harness.root / "work" / "job-1" / "checkpoint.pt", weights_only=False)
    assert checkpoint["epoch"] == 8 and {"model_state", "optimizer_state"} <= set(checkpoint)


def test_regression_fits_a_linear_target(harness: Harness) -> None:
    key = harness.upload("datasets/reg.csv", regression_csv())
    assert harness.run(params(key, target="price", hyperparameters={"epochs": 15})) == 0
    result = harness.sink.result
    metrics = result["final_metrics"]
    assert (
        result["model"]["objective"] == "regression"
        and result["model"]["architecture"]["output_classes"] == 1
    )
    assert metrics["r2"] > 0.8
    assert metrics["rmse"] < result["baseline"]["mean_rmse"] / 3
    assert set(result["history"]) == {"loss", "val_loss", "val_rmse"}
    doc = harness.read_json("models/job-1/model.json")
    assert set(doc["target_scaling"]) == {"mean", "std"} and "labels" not in doc
    (prediction,) = portable_mlp.load(doc).predict([{"a": 1.0, "b": 0.0, "kind": "y"}])
    assert prediction.label == pytest.approx(8.0, abs=1.0) and prediction.confidence is None


def test_early_stopping_stops_on_a_plateau_and_keeps_the_best_weights(harness: Harness) -> None:
    key = harness.upload("datasets/noise.csv", noise_csv())
    early = {"enabled": True, "patience": 3, "monitor": "val_loss"}
    run = params(key, hyperparameters={"epochs": 200, "learning_rate": 0.02}, early_stopping=early)
    assert harness.run(run) == 0
    metrics = harness.sink.result["final_metrics"]
    history = harness.sink.result["history"]["val_loss"]
    assert metrics["stopped_early"] is True
    assert metrics["epochs_trained"] < 200 and len(history) == metrics["epochs_trained"]
    best = min(range(len(history)), key=history.__getitem__) + 1
    assert metrics["best_epoch"] == best == metrics["epochs_trained"] - 3
    assert metrics["val_loss"] == pytest.approx(history[best - 1], rel=1e-5)  # the best weights are back


def test_events_are_numbered_and_report_every_epoch(harness: Harness) -> None:
    key = harness.upload("datasets/clf.csv", classification_csv())
    assert harness.run(params(key, target="label", hyperparameters={"epochs": 3, "batch_size": 4})) == 0
    events = harness.sink.events
    assert all(e.source == STRATUS_SOURCE for e in events)
    assert [e.detail["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(e.detail["job_id"] == "job-1" for e in events)
    progress = harness.sink.of(PROGRESS)
    assert progress[0]["phase"] == "loading" and progress[-1]["phase"] == "saving"
    training = [p for p in progress if p["phase"] == "training"]
    assert {p["epoch"] for p in training} == {1, 2, 3}
    values = [p["progress"] for p in training]
    assert values == sorted(values) and values[-1] == 100.0
    bands = {int(v // 10) for v in values}
    assert bands >= set(range(1, 11))  # every 10% band announced, mid-epoch too
    last = training[-1]
    assert last["total_epochs"] == 3 and last["step"] == last["total_steps"] == 3 * 120
    assert set(last["metrics"]) == {"loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"}
    assert events[-1].detail_type == RESULT


def test_integer_targets_with_few_values_are_classes(harness: Harness) -> None:
    lines = ["a,b,grade"] + [f"{i % 7},{(i * 3) % 11},{(i % 7) // 3}" for i in range(120)]
    key = harness.upload("datasets/grades.csv", "\n".join(lines).encode())
    assert harness.run(params(key, target="grade", hyperparameters={"epochs": 2})) == 0
    assert harness.sink.result["model"]["objective"] == "classification"
    assert harness.sink.result["model"]["labels"] == ["0", "1", "2"]


def test_the_target_defaults_to_a_column_named_like_one(harness: Harness) -> None:
    key = harness.upload("datasets/noise.csv", noise_csv(rows=40))
    assert harness.run(params(key, hyperparameters={"epochs": 1})) == 0
    assert harness.sink.result["model"]["target"] == "target"


def test_no_target_and_none_to_guess_fails(harness: Harness) -> None:
    key = harness.upload("datasets/reg.csv", regression_csv(rows=40))
    assert harness.run(params(key)) == 1
    assert harness.sink.result["error"] == (
        "No target column given, and none is named target, label, class or y; columns: a, b, kind, price"
    )


def test_json_lines_datasets_train_too(harness: Harness) -> None:
    rows = [
        f'{{"size": {i % 10}, "shape": "{"ab"[i % 2]}", "y": {2.5 * (i % 10) + (i % 2)}}}' for i in range(100)
    ]
    key = harness.upload("datasets/data.jsonl", "\n".join(rows).encode())
    run = {"dataset_key": key, "objective": "regression", "hyperparameters": {"epochs": 2}}
    assert harness.run(run) == 0
    assert (
        harness.sink.result["model"]["target"] == "y"
        and harness.sink.result["model"]["objective"] == "regression"
    )


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"target": "nope"}, "Target column 'nope' not found; columns: x1, x2, color, label"),
        (
            {"target": "color", "objective": "regression"},
            "Target column 'color' must be numeric for regression",
        ),
        # A job queued before the rename names the objective `task`: the worker reads it the same.
        ({"target": "color", "task": "regression"}, "Target column 'color' must be numeric for regression"),
        (
            {"target": "label", "hyperparameters": {"learning_rate": 2}},
            "Invalid training parameters: hyperparameters.learning_rate: Input should be less than 1",
        ),
        (
            {"target": "label", "validation_split": 0.9, "hyperparameters": {"optimizer": "lbfgs"}},
            "Invalid training parameters: hyperparameters.optimizer: Input should be 'adam', 'adamw', 'sgd' or "
            "'rmsprop'; validation_split: Input should be less than or equal to 0.5",
        ),
        ({"target": "label", "features": ["x1", "zz"]}, "Feature column(s) 'zz' not found"),
        (
            {"target": "x1", "early_stopping": {"monitor": "val_accuracy"}},
            "early_stopping.monitor 'val_accuracy' needs a classification objective",
        ),
        (
            {"dataset_key": "datasets/missing.csv"},
            "Dataset object 'datasets/missing.csv' not found in storage",
        ),
    ],
)
def test_bad_input_fails_with_a_clear_reason(
    harness: Harness, overrides: dict[str, Any], reason: str
) -> None:
    key = harness.upload("datasets/clf.csv", classification_csv(rows=60))
    assert harness.run(params(key, **overrides)) == 1
    result = harness.sink.result
    assert result["status"] == "failed" and result["error"].startswith(reason)
    assert result["model"] is None and result["artifacts"] == {}


def test_a_single_class_target_fails(harness: Harness) -> None:
    key = harness.upload("datasets/one.csv", ("a,label\n" + "1,x\n2,x\n" * 10).encode())
    assert harness.run(params(key, target="label")) == 1
    assert "has 1 distinct value(s); classification needs at least 2" in harness.sink.result["error"]


def test_unknown_kinds_fail(harness: Harness) -> None:
    assert harness.run({}, kind="fine_tuning") == 1
    # The worker runs exactly the kinds the capabilities declare.
    runs = ", ".join(sorted(job_kinds().names()))
    assert harness.sink.result["error"] == f"Unknown job kind 'fine_tuning'; this worker runs: {runs}"
    assert {"training", "download"} <= set(job_kinds().names())


def test_a_stop_request_checkpoints_and_reports_stopped(harness: Harness) -> None:
    key = harness.upload("datasets/clf.csv", classification_csv())

    def stop_after_first_epoch(event: Any) -> None:
        if event.detail.get("phase") == "training" and harness.ctx is not None:
            harness.ctx.should_stop = True  # what the SIGTERM handler does

    harness.sink.on_publish = stop_after_first_epoch
    assert harness.run(params(key, target="label", hyperparameters={"epochs": 50})) == 143
    result = harness.sink.result
    assert result["status"] == "stopped" and result["error"] is None
    assert result["artifacts"] == {"checkpoint": "models/job-1/checkpoint.pt"}
    assert harness.exists("models/job-1/checkpoint.pt") and not harness.exists("models/job-1/model.json")
    assert len(result["history"]["loss"]) < 50
