"""`load_from_hub` without a hub: the cache is seeded the way `snapshot_download` leaves it, with a tiny
random BERT written by `save_pretrained` (and the all-MiniLM-L6-v2 tokenizer), then loaded through the
same `snapshot_download` + `from_pretrained` path production uses."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import torch

from stratus_worker.inference.errors import ModelUnavailable
from stratus_worker.inference.registry import load_from_hub
from tests import hub_server

REPO = "stratus-test/tiny-bert"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer, hidden-32 BertModel and a real tokenizer, saved with save_pretrained."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    hub_server.tiny_bert(directory, head=None)
    return directory


def seed_cache(cache_dir: Path, repo_id: str, files: Path, commit: str = COMMIT) -> Path:
    """Lay `files` out as a Hub download of `repo_id` at `commit` (branch main) would in `cache_dir`."""
    repo = cache_dir / f"models--{repo_id.replace('/', '--')}"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for file in files.iterdir():
        (snapshot / file.name).write_bytes(file.read_bytes())
    return snapshot


def outputs(model: Any, tokenizer: Any) -> torch.Tensor:
    batch = tokenizer("hello from the cache", return_tensors="pt")
    with torch.no_grad():
        hidden: torch.Tensor = model(**batch).last_hidden_state
    return hidden


def test_a_seeded_cache_loads_through_snapshot_download(tiny_bert: Path, tmp_path: Path) -> None:
    from transformers import AutoModel, AutoTokenizer

    snapshot = seed_cache(tmp_path, REPO, tiny_bert)
    loaded = load_from_hub(REPO, tmp_path, local_files_only=True)
    assert loaded.path == snapshot
    assert type(loaded.model).__name__ == "BertModel" and loaded.model.config.hidden_size == 32
    assert loaded.tokenizer is not None
    original = AutoModel.from_pretrained(tiny_bert)
    expected = outputs(original, AutoTokenizer.from_pretrained(tiny_bert))
    assert torch.allclose(outputs(loaded.model, loaded.tokenizer), expected)


def test_the_hub_path_with_the_network_allowed_falls_back_to_the_cache(
    tiny_bert: Path, tmp_path: Path
) -> None:
    """Without local_files_only: the hub is unreachable here (or does not know the repository), and
    snapshot_download settles for the cached snapshot."""
    snapshot = seed_cache(tmp_path, REPO, tiny_bert)
    assert load_from_hub(REPO, tmp_path, timeout=2).path == snapshot


def test_a_local_directory_is_loaded_as_it_is(tiny_bert: Path, tmp_path: Path) -> None:
    loaded = load_from_hub(str(tiny_bert), tmp_path)
    assert loaded.path == tiny_bert and loaded.model.config.num_hidden_layers == 2


def test_a_model_missing_from_the_cache_fails_fast_and_clearly(tmp_path: Path) -> None:
    started = time.monotonic()
    with pytest.raises(ModelUnavailable, match=r"not in the cache .* cannot be reached"):
        load_from_hub("stratus-test/not-cached", tmp_path, local_files_only=True)
    assert time.monotonic() - started < 5


def test_an_unanswering_hub_is_given_up_on_after_the_timeout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    # 10.255.255.1 is not routed: a connection attempt hangs until its timeout (or fails at once)
    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", "http://10.255.255.1:81")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    started = time.monotonic()
    with pytest.raises(ModelUnavailable):
        load_from_hub("stratus-test/not-cached", tmp_path, timeout=1)
    assert time.monotonic() - started < 5
