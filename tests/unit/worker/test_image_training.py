"""The image_training kind, in-process: transfer learning from the shipped EfficientNet-Lite0 weights
on a small synthetic dataset of coloured shapes, real local storage, real torch on the CPU."""

from __future__ import annotations

from typing import Any

import pytest

from tests.synthetic_images import shapes_zip
from tests.unit.worker.harness import Harness

PROGRESS = "Stratus Job Progress"


def params(key: str, **hyper: Any) -> dict[str, Any]:
    return {
        "dataset_key": key,
        "dataset_format": "zip",
        "backbone": "efficientnet-lite0",
        "model_type": "efficientnet-lite0",
        "seed": 3,
        "validation_split": 0.25,
        "hyperparameters": {"epochs": 4, "batch_size": 16, "learning_rate": 0.01, "image_size": 64, **hyper},
        "early_stopping": {"enabled": True, "patience": 3, "monitor": "val_loss"},
    }


@pytest.mark.slow
def test_transfer_learning_reaches_high_validation_accuracy(harness: Harness) -> None:
    key = harness.upload("datasets/shapes.zip", shapes_zip(24, corrupt=2))
    assert harness.run(params(key), kind="image_training") == 0, harness.sink.result
    result = harness.sink.result
    metrics = result["final_metrics"]
    assert result["status"] == "completed", result
    assert metrics["val_accuracy"] >= 0.9 and metrics["accuracy"] == metrics["val_accuracy"]
    assert metrics["images_skipped"] == 2
    assert metrics["validation_images"] == 18 and metrics["train_images"] == 54  # 6 of 24 per class
    matrix = metrics["confusion_matrix"]
    assert matrix["labels"] == ["circle", "square", "triangle"]
    assert sum(map(sum, matrix["matrix"])) == 18
    assert sum(matrix["matrix"][i][i] for i in range(3)) == round(metrics["accuracy"] * 18)
    assert set(result["history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    model = result["model"]
    assert model["task"] == "image_classification" and model["labels"] == ["circle", "square", "triangle"]
    arch = model["architecture"]
    assert arch["input_shape"] == [64, 64, 3] and arch["output_classes"] == 3
    assert arch["trainable_parameters"] == 1280 * 3 + 3 < arch["parameters"]  # only the new head
    descriptor = harness.read_json(result["artifacts"]["model"])
    assert descriptor["format"] == "stratus-image-classifier/1" and descriptor["image_size"] == 64
    assert harness.exists(descriptor["weights"]) and harness.exists(result["artifacts"]["checkpoint"])
    progress = harness.sink.of(PROGRESS)
    epochs = [p["epoch"] for p in progress if p["phase"] == "training"]
    assert epochs == sorted(epochs) and max(epochs) == metrics["epochs_trained"]
    assert all({"loss", "accuracy", "val_loss", "val_accuracy"} <= set(p["metrics"]) for p in progress[2:])
