"""`python -m stratus_worker` as the local backend runs it: a subprocess, configured by environment only,
reading its dataset from a local object store and writing events to a JSON Lines file."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import torch

from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus.adapters.local.worker_pool import LocalProcessBackend
from stratus.local.runtime import WORKER_COMMAND
from stratus.ml import portable_mlp
from stratus.ports.events import Event
from stratus.ports.jobs import JobSpec
from tests.unit.worker.synthetic import classification_csv

pytestmark = pytest.mark.slow  # each run starts a fresh interpreter and imports torch


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "objects"
    storage = LocalDirectoryStorage(root, base_url="http://test", signing_secret="x")
    asyncio.run(storage.put_bytes("datasets/clf.csv", classification_csv(), content_type="text/csv"))
    return root


def environment(store: Path, workdir: Path, job_id: str, params: dict[str, Any]) -> dict[str, str]:
    return {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "STRATUS_JOB_ID": job_id,
        "STRATUS_JOB_KIND": "training",
        "STRATUS_JOB_PARAMS": json.dumps(params),
        "STRATUS_OUTPUT_PREFIX": f"models/{job_id}",
        "STRATUS_JOB_WORKDIR": str(workdir),
        "STRATUS_STORAGE_ROOT": str(store),
        "STRATUS_RUNTIME": "local",
    }


def read_events(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.endswith("}")]


def test_a_training_job_completes(store: Path, tmp_path: Path) -> None:
    params = {"dataset_key": "datasets/clf.csv", "target": "label", "hyperparameters": {"epochs": 4}}
    workdir = tmp_path / "work"
    done = subprocess.run(
        WORKER_COMMAND, env=environment(store, workdir, "job-ok", params), capture_output=True, timeout=120
    )
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    events = read_events(workdir / "events.jsonl")
    assert {e["source"] for e in events} == {"stratus.jobs"}
    assert [e["detail"]["seq"] for e in events] == list(range(1, len(events) + 1))
    assert all(Event.from_envelope(e).detail["job_id"] == "job-ok" for e in events)
    epochs = {e["detail"]["epoch"] for e in events if e["detail"].get("phase") == "training"}
    assert epochs == {1, 2, 3, 4}
    result = events[-1]
    assert result["detail-type"] == "Stratus Job Result" and result["detail"]["status"] == "completed"
    for key in result["detail"]["artifacts"].values():
        assert (store / key).is_file()
    doc = json.loads((store / "models/job-ok/model.json").read_text())
    (prediction,) = portable_mlp.load(doc).predict([{"x1": 2, "x2": 2, "color": "red"}])
    assert prediction.label == "yes"


def test_sigterm_checkpoints_and_exits_143(store: Path, tmp_path: Path) -> None:
    params = {
        "dataset_key": "datasets/clf.csv",
        "target": "label",
        "hyperparameters": {"epochs": 5000, "batch_size": 4},
    }
    workdir = tmp_path / "work"
    process = subprocess.Popen(
        WORKER_COMMAND, env=environment(store, workdir, "job-stop", params), stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 60
        while not any(e["detail"].get("phase") == "training" for e in read_events(workdir / "events.jsonl")):
            assert process.poll() is None and time.monotonic() < deadline, "no training progress"
            time.sleep(0.05)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 143
    finally:
        process.kill()
        _, stderr = process.communicate()
    events = read_events(workdir / "events.jsonl")
    result = events[-1]["detail"]
    assert events[-1]["detail-type"] == "Stratus Job Result", stderr.decode()[-2000:]
    assert result["status"] == "stopped" and result["artifacts"] == {
        "checkpoint": "models/job-stop/checkpoint.pt"
    }
    checkpoint = torch.load(store / "models/job-stop/checkpoint.pt", weights_only=False)
    assert checkpoint["step"] > 0 and {"model_state", "optimizer_state", "epoch"} <= set(checkpoint)
    assert not (store / "models/job-stop/model.json").exists()


async def test_the_local_backend_runs_it(store: Path, tmp_path: Path) -> None:
    states: list[str] = []

    async def on_event(event: Event) -> None:
        states.append(event.detail["state"])

    backend = LocalProcessBackend(WORKER_COMMAND, on_event=on_event, work_dir=tmp_path / "jobs")
    spec = JobSpec(
        job_id="job-local",
        kind="training",
        params={"dataset_key": "datasets/nope.csv", "target": "label"},
        output_prefix="models/job-local",
        env={"STRATUS_STORAGE_ROOT": str(store), "OMP_NUM_THREADS": "1"},
    )
    try:
        status = await backend.wait(await backend.submit(spec))
    finally:
        await backend.shutdown()
    assert status.state == "failed"
    assert status.reason is not None
    assert status.reason.endswith("Job failed: Dataset object 'datasets/nope.csv' not found in storage")
    assert states == ["running", "failed"]
    (result,) = read_events(tmp_path / "jobs" / "job-local" / "events.jsonl")[-1:]
    assert result["detail"]["status"] == "failed"


def test_params_too_long_for_the_environment_are_read_from_storage(store: Path, tmp_path: Path) -> None:
    # GIVEN params stored by the dispatcher (SageMaker caps environment values at 512 characters)
    params = {"dataset_key": "datasets/clf.csv", "target": "label", "hyperparameters": {"epochs": 1},
              "note": "x" * 600}  # fmt: skip
    storage = LocalDirectoryStorage(store, base_url="http://test", signing_secret="x")
    asyncio.run(storage.put_bytes("models/job-ref/params.json", json.dumps(params).encode()))
    env = environment(store, tmp_path / "work", "job-ref", params)
    del env["STRATUS_JOB_PARAMS"]
    env["STRATUS_JOB_PARAMS_KEY"] = "models/job-ref/params.json"
    # WHEN the worker runs THEN it trains with them
    done = subprocess.run(WORKER_COMMAND, env=env, capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr.decode()[-2000:]
    result = read_events(tmp_path / "work" / "events.jsonl")[-1]
    assert result["detail"]["status"] == "completed"
