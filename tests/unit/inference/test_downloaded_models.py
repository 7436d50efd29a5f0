"""Downloaded models in the engine: served from their directory, and unloaded least recently used first
once more of them are loaded than the bound allows."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratus_worker.inference import downloaded
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import ModelUnavailable
from tests.hub_server import tiny_bert


@pytest.fixture(scope="module")
def encoder_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("encoder")
    tiny_bert(directory, head=None)
    return directory


def source(revision: str) -> dict[str, object]:
    return {"snapshot": f"users/u/jobs/{revision}/snapshot", "files": [], "architecture": "BertModel",
            "model_type": "bert", "revision": revision, "max_sequence_length": 64}  # fmt: skip


def test_least_recently_used_downloaded_models_are_unloaded(encoder_dir: Path) -> None:
    # GIVEN an engine that keeps at most two downloaded models in memory, and three downloads
    engine = InferenceEngine(models=(), max_downloaded_loaded=2)
    keys = []
    for revision in ("r1", "r2", "r3"):
        spec = downloaded.spec_for("org/encoder", source(revision), encoder_dir)
        engine.add(spec)
        keys.append(spec.name)
    # WHEN each is used in turn
    for key in keys:
        [out] = engine.run("embeddings", key, [{"text": "a short sentence"}])
        assert out["dimension"] == 32
    # THEN the first one used was unloaded
    assert sorted(engine.loaded()) == sorted(keys[1:])
    # AND using it again loads it back, unloading the least recently used of the others
    engine.run("classification", keys[0], [{"text": "great", "candidate_labels": ["good", "bad"]}])
    assert sorted(engine.loaded()) == sorted([keys[0], keys[2]])


def test_an_architecture_the_worker_cannot_serve_is_refused(encoder_dir: Path) -> None:
    with pytest.raises(ModelUnavailable, match="not served yet"):
        downloaded.spec_for(
            "org/vision", {**source("r9"), "architecture": "ViTModel", "model_type": "vit"}, encoder_dir
        )
