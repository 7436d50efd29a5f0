"""Fine-tuning fixtures: one torch thread, a tiny random Llama uploaded as a base model's snapshot."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

from tests import tiny_llama
from tests.unit.worker.harness import Harness

EXAMPLES = [
    {"instruction": "What is the capital of France?", "output": "The capital of France is Paris."},
    {"prompt": "Translate to French: good morning.", "completion": "Bonjour."},
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
] * 4


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> Iterator[None]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_llama_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tiny_llama.build(tmp_path_factory.mktemp("tiny-llama"))


def jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "\n".join(json.dumps(r) for r in rows).encode() + b"\n"


@pytest.fixture
def harness(tmp_path: Path, tiny_llama_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Harness:
    monkeypatch.setenv("STRATUS_MODEL_CACHE", str(tmp_path / "cache"))
    h = Harness(tmp_path)
    files = sorted(p.name for p in tiny_llama_dir.iterdir() if p.is_file())
    for name in files:
        asyncio.run(h.storage.put_bytes(f"base/tiny-llama/{name}", (tiny_llama_dir / name).read_bytes()))
    h.upload("datasets/train.jsonl", jsonl(EXAMPLES))
    return h


def base_source(harness: Harness) -> dict[str, Any]:
    files = [k.rsplit("/", 1)[-1] for k in asyncio.run(_keys(harness, "base/tiny-llama/"))]
    return {"name": "tiny-llama", "snapshot": "base/tiny-llama", "files": files}


async def _keys(harness: Harness, prefix: str) -> list[str]:
    root = harness.root / "objects" / prefix
    return [str(p.relative_to(harness.root / "objects")) for p in root.iterdir()]


def params(harness: Harness, **hp: Any) -> dict[str, Any]:
    return {
        "method": hp.pop("method", "lora"),
        "base": base_source(harness),
        "dataset_key": "datasets/train.jsonl",
        "dataset_format": "jsonl",
        "hyperparameters": {
            "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "epochs": 4, "batch_size": 4,
            "learning_rate": 5e-3, "max_length": 128, "gradient_accumulation_steps": 1, "save_steps": 4,
            **hp,
        },
    }  # fmt: skip
