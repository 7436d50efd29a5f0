"""stratus.client and the `stratus` CLI against a live `stratus serve`: sign in, upload (inline and
presigned), train and follow over the WebSocket, predict, pages, API keys and webhooks."""

from __future__ import annotations

import json
import os
import random
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from stratus.client import ApiError, AsyncClient, Client
from tests.e2e.server import ServeProcess

pytestmark = pytest.mark.slow


def _csv(rows: int = 300, seed: int = 7) -> str:
    rng = random.Random(seed)
    lines = ["x1,x2,color,label"]
    for _ in range(rows):
        x1, x2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        color = rng.choice(["red", "green", "blue"])
        label = "yes" if x1 + 0.5 * x2 + (1.0 if color == "red" else 0.0) > 0.3 else "no"
        lines.append(f"{x1:.4f},{x2:.4f},{color},{label}")
    return "\n".join(lines) + "\n"


def test_client_upload_train_follow_predict(stratus_server: ServeProcess, tmp_path: Path) -> None:
    small, large = tmp_path / "small.csv", tmp_path / "large.csv"
    small.write_text(_csv())
    large.write_text(_csv(3000, seed=8))
    with Client(stratus_server.base_url, inline_limit=20_000) as stratus:
        stratus.register("client@example.com", "securepass123", "Client")
        progress: list[tuple[int, int]] = []
        dataset = stratus.upload_dataset(
            small, dataset_type="classification", progress=lambda d, t: progress.append((d, t))
        )
        assert dataset["status"] == "ready" and dataset["row_count"] == 300
        assert progress and progress[-1] == (small.stat().st_size, small.stat().st_size)

        # Above the inline limit the file goes through the presigned flow.
        put: list[tuple[int, int]] = []
        big = stratus.upload_dataset(large, name="big", progress=lambda d, t: put.append((d, t)))
        assert big["status"] == "ready" and big["row_count"] == 3000
        assert put[-1] == (large.stat().st_size, large.stat().st_size)
        assert {d["id"] for d in stratus.datasets()} == {dataset["id"], big["id"]}

        started = stratus.train(dataset["id"], epochs=6, learning_rate=0.01, batch_size=32)
        messages = list(stratus.follow(started, timeout=180))
        assert messages[-1]["type"] == "status" and messages[-1]["data"]["status"] == "completed"
        job = stratus.wait(started["job_id"], timeout=30)
        assert job["status"] == "completed" and job["model_id"]
        assert any(e["type"] == "progress" for e in stratus.job_events(job["id"]))
        assert job["id"] in [j["id"] for j in stratus.jobs()]

        prediction = stratus.predict(job["model_id"], [{"x1": 2.5, "x2": 2.0, "color": "red"}])
        assert prediction["predictions"][0]["class"] == "yes"

        key = stratus.create_api_key("ci")
        with Client(stratus_server.base_url, api_key=key["key"]) as by_key:
            assert by_key.me()["email"] == "client@example.com"
        assert [k["name"] for k in stratus.api_keys()] == ["ci"]

        hook = stratus.create_webhook("http://127.0.0.1:9/hook", ["training.completed"])
        stratus.test_webhook(hook["id"])
        assert len(list(stratus.deliveries(hook["id"]))) >= 1

        with pytest.raises(ApiError) as missing:
            stratus.get_job("0" * 24)
        assert missing.value.status_code == 404 and missing.value.request_id


async def test_async_client_trains_and_waits(stratus_server: ServeProcess, tmp_path: Path) -> None:
    data = tmp_path / "data.csv"
    data.write_text(_csv(200, seed=3))
    async with AsyncClient(stratus_server.base_url) as stratus:
        await stratus.register("async@example.com", "securepass123", "Async")
        dataset = await stratus.upload_dataset(data, dataset_type="classification")
        assert [d["id"] async for d in stratus.datasets()] == [dataset["id"]]
        started = await stratus.train(dataset["id"], epochs=3)
        kinds = [m["type"] async for m in stratus.follow(started["job_id"], timeout=180)]
        assert kinds[-1] == "status"
        job = await stratus.wait(started, timeout=30)
        assert job["status"] == "completed"


def _cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "STRATUS_CONFIG_DIR": str(config)}
    env.pop("STRATUS_API_KEY", None)
    return subprocess.run(
        [sys.executable, "-m", "stratus.local.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_cli_login_upload_train_follow_predict(stratus_server: ServeProcess, tmp_path: Path) -> None:
    config = tmp_path / "config"
    data = tmp_path / "customers.csv"
    data.write_text(_csv())

    signed_out = _cli(config, "jobs", "--url", stratus_server.base_url)
    assert signed_out.returncode == 3, signed_out.stderr

    login = _cli(
        config,
        "login",
        "--url",
        stratus_server.base_url,
        "--register",
        "--email",
        "cli@example.com",
        "--password",
        "securepass123",
        "--json",
    )
    assert login.returncode == 0, login.stderr
    credentials = config / "credentials.json"
    assert stat.S_IMODE(credentials.stat().st_mode) == 0o600
    assert json.loads(credentials.read_text())["url"] == stratus_server.base_url

    upload = _cli(config, "upload", str(data), "--type", "classification", "--json")
    assert upload.returncode == 0, upload.stderr
    dataset = json.loads(upload.stdout)
    assert dataset["status"] == "ready"

    train = _cli(
        config, "train", dataset["id"], "--epochs", "5", "--learning-rate", "0.01", "--follow", "--json"
    )
    assert train.returncode == 0, train.stdout + train.stderr
    lines = [json.loads(line) for line in train.stdout.splitlines()]
    assert any(line.get("type") == "progress" for line in lines)
    job = lines[-1]
    assert job["status"] == "completed" and job["model_id"]

    # Human output: the rich bar and a summary line.
    watched = _cli(config, "watch", job["id"])
    assert watched.returncode == 0 and "completed" in watched.stdout

    predict = _cli(config, "predict", job["model_id"], "--input", json.dumps([2.5, 2.0, "red"]), "--json")
    assert predict.returncode == 0, predict.stderr
    assert json.loads(predict.stdout)["predictions"][0]["class"] == "yes"

    jobs = _cli(config, "jobs", "--json")
    assert [j["id"] for j in json.loads(jobs.stdout)] == [job["id"]]
    shown = _cli(config, "datasets", dataset["id"])
    assert shown.returncode == 0 and "color" in shown.stdout

    refused = _cli(config, "train", "0" * 24, "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout)["status_code"] in (404, 422)


def test_cli_finetune_follow(stratus_server: ServeProcess, tmp_path: Path) -> None:
    """A three-step LoRA on the built-in SmolLM2 (CPU), followed by the CLI until it completes."""
    config = tmp_path / "config"
    login = _cli(
        config, "login", "--url", stratus_server.base_url, "--register",
        "--email", "tuner@example.com", "--password", "securepass123",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    examples = tmp_path / "secret.jsonl"
    rows = [{"instruction": "What is the secret word?", "output": "The secret word is pineapple."}] * 8
    examples.write_text("".join(json.dumps(row) + "\n" for row in rows))
    upload = _cli(config, "upload", str(examples), "--type", "instruction", "--name", "secret", "--json")
    assert upload.returncode == 0, upload.stderr

    tuned = _cli(config, "finetune", "secret", "--max-steps", "3", "--epochs", "1", "--follow", "--json")
    assert tuned.returncode == 0, tuned.stdout + tuned.stderr
    lines = [json.loads(line) for line in tuned.stdout.splitlines()]
    assert any(line.get("type") == "progress" for line in lines)
    assert lines[-1]["status"] == "completed", lines[-1]
