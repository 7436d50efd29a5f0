"""The image_training kind, in-process: transfer learning from the shipped EfficientNet-Lite0 weights
on a small synthetic dataset of coloured shapes, real local storage, real torch on the CPU."""

from __future__ import annotations

import base64
import random
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest

from stratus_worker.inference.errors import InvalidInput
from stratus_worker.vision.serve import TrainedImageClassifiers, decode
from tests.synthetic_images import png, shape_image, shapes_zip
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
def test_transfer_learning_reaches_high_validation_accuracy(harness: Harness, tmp_path: Path) -> None:
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
    assert model["objective"] == "image_classification"
    assert model["labels"] == ["circle", "square", "triangle"]
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

    # The inference worker's side serves what was trained: held-out images, one forward pass.
    served = TrainedImageClassifiers(lambda: harness.storage, tmp_path / "cache")
    rng = random.Random(42)
    labels = ["circle", "square", "triangle"] * 2
    inputs = [{"image": base64.b64encode(png(shape_image(label, rng))).decode()} for label in labels]
    outputs = served.predict(result["artifacts"]["model"], inputs)
    assert sum(o["class"] == label for o, label in zip(outputs, labels, strict=True)) >= 5
    assert all(o["top"][0]["class"] == o["class"] and 0 < o["confidence"] <= 1 for o in outputs)


def test_too_many_corrupt_images_fail_the_job_with_the_reason(harness: Harness) -> None:
    key = harness.upload("datasets/broken.zip", shapes_zip(4, corrupt=3))
    assert harness.run(params(key), kind="image_training") == 1
    error = harness.sink.result["error"]
    assert "3 of 15 images could not be decoded" in error and "shapes/circle/broken0.png" in error


def test_a_class_with_too_few_readable_images_fails_the_job(harness: Harness) -> None:
    key = harness.upload("datasets/small.zip", shapes_zip(3))
    assert harness.run(params(key), kind="image_training") == 1
    assert "at least 4 readable images; too few in 'circle' (3)" in harness.sink.result["error"]


@pytest.mark.slow
def test_sigterm_checkpoints_and_stops(harness: Harness) -> None:
    key = harness.upload("datasets/shapes.zip", shapes_zip(8))

    def stop_once_training(event: Any) -> None:
        if event.detail.get("phase") == "training" and harness.ctx is not None:
            harness.ctx.should_stop = True  # what the SIGTERM handler does

    harness.sink.on_publish = stop_once_training
    assert harness.run(params(key, epochs=50), kind="image_training") == 143
    result = harness.sink.result
    assert result["status"] == "stopped" and harness.exists(result["artifacts"]["checkpoint"])
    assert len(result["history"]["loss"]) < 50


def _png_header(width: int, height: int) -> bytes:
    """A PNG that declares a huge canvas in a few bytes: a decompression bomb's shape."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64))


def test_prediction_images_are_bounded_before_decoding() -> None:
    for width, height in ((7_000, 7_000), (20_000, 20_000)):  # over our bound; over PIL's own too
        bomb = {"image": base64.b64encode(_png_header(width, height)).decode()}
        with pytest.raises(InvalidInput, match="pixels are accepted"):
            decode(bomb, 0)
    with pytest.raises(InvalidInput, match="not an image"):
        decode({"image": base64.b64encode(b"plain text").decode()}, 1)
    with pytest.raises(InvalidInput, match="base64"):
        decode({"image": "***"}, 2)


def test_unfrozen_blocks_train_with_the_head(harness: Harness) -> None:
    key = harness.upload("datasets/shapes.zip", shapes_zip(4))
    assert harness.run(params(key, epochs=1, unfreeze_blocks=2), kind="image_training") == 0
    architecture = harness.sink.result["model"]["architecture"]
    assert architecture["unfrozen_blocks"] == 2
    assert 1280 * 3 + 3 < architecture["trainable_parameters"] < architecture["parameters"]


def test_a_downloaded_hub_checkpoint_is_a_backbone(harness: Harness, tmp_path: Path) -> None:
    """The production path for `resnet50` and friends, on a tiny random ResNet saved as a download
    job leaves a snapshot in storage."""
    from transformers import ResNetConfig, ResNetForImageClassification

    config = ResNetConfig(
        embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic", num_labels=1000
    )
    snapshot = tmp_path / "snapshot"
    ResNetForImageClassification(config).save_pretrained(snapshot)
    (snapshot / "preprocessor_config.json").write_text(
        '{"image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}'
    )
    files = sorted(p.name for p in snapshot.iterdir())
    for name in files:
        harness.upload(f"hub/tiny-resnet/{name}", (snapshot / name).read_bytes())
    key = harness.upload("datasets/shapes.zip", shapes_zip(6))
    hub = {"backbone": "org/tiny-resnet", "backbone_source": {"snapshot": "hub/tiny-resnet", "files": files}}
    assert harness.run({**params(key, epochs=2), **hub}, kind="image_training") == 0, harness.sink.result
    result = harness.sink.result
    assert result["model"]["architecture"]["class"] == "ResNetForImageClassification"
    assert result["model"]["architecture"]["output_classes"] == 3
    descriptor = harness.read_json(result["artifacts"]["model"])
    assert descriptor["mean"] == [0.5, 0.5, 0.5] and "config.json" in descriptor["files"]
    served = TrainedImageClassifiers(lambda: harness.storage, tmp_path / "cache")
    image = {"image": base64.b64encode(png(shape_image("circle", random.Random(5)))).decode()}
    (output,) = served.predict(result["artifacts"]["model"], [image])
    assert output["class"] in ("circle", "square", "triangle") and len(output["top"]) == 3
