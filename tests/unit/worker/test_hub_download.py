"""What the download kind fetches and how it reads a model's size from its files."""

from __future__ import annotations

import json
import struct
from pathlib import Path

from stratus_worker.hub_download import safetensors_parameters, select_files


def test_safetensors_are_preferred_and_other_frameworks_skipped() -> None:
    files = [
        ("config.json", 600),
        ("model.safetensors", 1000),
        ("pytorch_model.bin", 1000),
        ("tf_model.h5", 1000),
        ("flax_model.msgpack", 1000),
        ("onnx/model.onnx", 1000),
        (".gitattributes", 10),
        ("1_Pooling/config.json", 100),
        ("tokenizer.json", 700),
    ]
    assert [name for name, _ in select_files(files)] == [
        "1_Pooling/config.json",
        "config.json",
        "model.safetensors",
        "tokenizer.json",
    ]


def test_pickled_weights_are_fetched_when_there_are_no_safetensors() -> None:
    files = [("config.json", 1), ("pytorch_model.bin", 2)]
    assert select_files(files) == [("config.json", 1), ("pytorch_model.bin", 2)]


def test_parameters_are_counted_from_the_safetensors_header(tmp_path: Path) -> None:
    header = {
        "__metadata__": {"format": "pt"},
        "embeddings.weight": {"dtype": "F32", "shape": [100, 8], "data_offsets": [0, 3200]},
        "classifier.bias": {"dtype": "F32", "shape": [2], "data_offsets": [3200, 3208]},
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "model.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(3208))
    assert safetensors_parameters(path) == 802
