"""The production detection path: a transformers object detector downloaded from the hub (DETR, YOLOS,
...) served by the inference worker, tested on a tiny random YOLOS built from a config (the hub cannot
be reached here). Its labels are its own; boxes are [x, y, width, height] inside the image."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from stratus.ml import catalogue
from stratus_worker.inference import downloaded
from stratus_worker.inference.engine import InferenceEngine


@pytest.fixture(scope="module")
def tiny_yolos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    path = tmp_path_factory.mktemp("tiny-yolos")
    config = YolosConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=[64, 64],
        patch_size=16, num_detection_tokens=5, id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1},
    )  # fmt: skip
    YolosForObjectDetection(config).save_pretrained(path)
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(path)
    return path


def test_a_downloaded_detector_answers_with_its_own_labels(tiny_yolos: Path) -> None:
    source = {"architecture": "YolosForObjectDetection", "model_type": "yolos", "revision": "0123abcd"}
    assert catalogue.downloaded_serving(source["architecture"], source["model_type"]) == (
        "hub-object-detector",
        ("object-detection",),
    )
    engine = InferenceEngine()
    spec = downloaded.spec_for("someone/tiny-yolos", source, tiny_yolos)
    engine.add(spec)
    buffer = io.BytesIO()
    Image.fromarray(np.full((100, 120, 3), 127, dtype=np.uint8)).save(buffer, format="PNG")
    image = base64.b64encode(buffer.getvalue()).decode()
    [out] = engine.run("object-detection", spec.name, [{"image": image}], {"threshold": 0.0})
    assert out["labels"] == ["cat", "dog"] and (out["width"], out["height"]) == (120, 100)
    assert len(out["detections"]) == 5  # one per detection token, all kept at threshold 0
    for found in out["detections"]:
        x, y, w, h = found["bbox"]
        assert found["label"] in {"cat", "dog"} and 0 <= found["confidence"] <= 1
        assert x >= 0 and y >= 0 and x + w <= 120 and y + h <= 100
    [strict] = engine.run("object-detection", spec.name, [{"image": image}], {"threshold": 1.0})
    assert strict["detections"] == []
