"""The `download` job kind as the local backend runs it (a subprocess configured by environment), against a
local server speaking the hub's protocol: huggingface_hub's real client code fetches the files."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stratus.local.runtime import WORKER_COMMAND
from stratus_worker.inference.registry import load_from_hub
from tests.hub_server import TINY_REPO as REPO
from tests.hub_server import HubServer, closed_port, tiny_sentiment_repo
from tests.integration.worker.test_entrypoint import read_events

pytestmark = pytest.mark.slow  # each run starts a fresh interpreter


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    tiny_sentiment_repo(root / REPO)
    return root


@pytest.fixture
def hub(hub_root: Path) -> Iterator[HubServer]:
    with HubServer(hub_root) as server:
        yield server


def run_download(
    tmp_path: Path, endpoint: str, params: dict[str, Any]
) -> tuple[int, str, list[dict[str, Any]]]:
    env = {
        **os.environ,
        "HF_ENDPOINT": endpoint,
        "HF_HOME": str(tmp_path / "hf-home"),
        "STRATUS_JOB_ID": "dl-1",
        "STRATUS_JOB_KIND": "download",
        "STRATUS_JOB_PARAMS": json.dumps(params),
        "STRATUS_OUTPUT_PREFIX": "users/u1/jobs/dl-1",
        "STRATUS_JOB_WORKDIR": str(tmp_path / "work"),
        "STRATUS_STORAGE_ROOT": str(tmp_path / "objects"),
        "STRATUS_RUNTIME": "local",
    }
    env.pop("HF_HUB_OFFLINE", None)
    done = subprocess.run(WORKER_COMMAND, env=env, capture_output=True, text=True, timeout=120)
    return done.returncode, done.stderr, read_events(tmp_path / "work" / "events.jsonl")


def test_a_repository_is_snapshotted_into_storage_and_described(
    hub: HubServer, hub_root: Path, tmp_path: Path
) -> None:
    from transformers import AutoModelForSequenceClassification

    # GIVEN a repository on the hub  WHEN the download job runs
    code, stderr, events = run_download(tmp_path, hub.url, {"repo_id": REPO, "task": "classification"})

    # THEN it completes, reporting progress in files and bytes up to the whole repository
    assert code == 0, stderr[-2000:]
    progress = [e["detail"] for e in events if e["detail-type"] == "Stratus Job Progress"]
    assert {p["phase"] for p in progress} == {"downloading"}
    last = progress[-1]
    assert last["step"] == last["total_steps"] and last["progress"] == 100.0
    assert last["metrics"]["bytes_downloaded"] == last["metrics"]["total_bytes"] > 0
    # AND the result describes the model from its files, without loading it
    result = events[-1]["detail"]
    assert result["status"] == "completed"
    model = result["model"]
    original = load_from_hub(
        str(hub_root / REPO), tmp_path / "c", model_class=AutoModelForSequenceClassification
    )
    assert model["architecture"] == "BertForSequenceClassification"
    assert model["model_type"] == "bert"
    assert model["labels"] == ["negative", "positive"]
    assert model["max_sequence_length"] == 64
    assert model["parameters"] == sum(p.numel() for p in original.model.parameters())
    # AND only the PyTorch safetensors copy was fetched; the snapshot in storage loads as a model
    assert hub.fetched[f"{REPO}/model.safetensors"] == 1
    assert f"{REPO}/onnx/model.onnx" not in hub.fetched and f"{REPO}/pytorch_model.bin" not in hub.fetched
    snapshot = tmp_path / "objects" / result["artifacts"]["snapshot"]
    assert (snapshot / "model.safetensors").is_file() and (snapshot / "config.json").is_file()
    loaded = load_from_hub(str(snapshot), tmp_path / "c", model_class=AutoModelForSequenceClassification)
    assert loaded.model.config.id2label == {0: "negative", 1: "positive"}
    assert loaded.tokenizer is not None


def test_an_unreachable_hub_fails_the_job_quickly_with_the_reason(tmp_path: Path) -> None:
    started = time.monotonic()
    code, stderr, events = run_download(
        tmp_path, f"http://127.0.0.1:{closed_port()}", {"repo_id": REPO, "timeout_s": 2}
    )
    assert code == 1
    assert time.monotonic() - started < 60
    result = events[-1]["detail"]
    assert result["status"] == "failed"
    assert "could not be reached" in result["error"] and REPO in result["error"]
    assert stderr.strip().splitlines()[-1] == f"Job failed: {result['error']}"  # what backends record
    assert not (tmp_path / "objects").exists() or not any((tmp_path / "objects").rglob("*.safetensors"))


def test_an_unknown_repository_fails_with_not_found(hub: HubServer, tmp_path: Path) -> None:
    code, _, events = run_download(tmp_path, hub.url, {"repo_id": "nobody/nothing"})
    assert code == 1
    assert events[-1]["detail"]["error"] == "'nobody/nothing' was not found on the Hugging Face Hub"


def test_a_repository_over_the_size_limit_is_refused_before_fetching(hub: HubServer, tmp_path: Path) -> None:
    code, _, events = run_download(tmp_path, hub.url, {"repo_id": REPO, "max_bytes": 1000})
    assert code == 1
    assert "download limit" in events[-1]["detail"]["error"]
    assert not hub.fetched
