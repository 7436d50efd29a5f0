"""`stratus download-model --follow` against `stratus serve` with the local hub stand-in: the download's
files and bytes are followed to the end, then the model answers `stratus tasks classify`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.client import Client
from tests.e2e.server import ServeProcess, free_port
from tests.hub_server import TINY_REPO, HubServer, tiny_sentiment_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    root = tmp_path_factory.mktemp("hub")
    tiny_sentiment_repo(root / TINY_REPO)
    with HubServer(root, delay_s=0.3) as hub:
        process = ServeProcess(
            tmp_path_factory.mktemp("state"),
            free_port(),
            env={
                "HF_ENDPOINT": hub.url,
                "HF_HOME": str(tmp_path_factory.mktemp("hf")),
                "HF_HUB_OFFLINE": "0",
            },
        )
        process.start()
        yield process
        returncode, output = process.stop()
        assert returncode == 0, output


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


def test_download_model_follow_then_classify(server: ServeProcess, tmp_path: Path) -> None:
    config = tmp_path / "config"
    with Client(server.base_url) as client:
        client.register("hub@example.com", "securepass123", "Hub")
        key = client.create_api_key("cli")["key"]
    login = _cli(config, "login", "--url", server.base_url, "--api-key", key)
    assert login.returncode == 0, login.stderr

    followed = _cli(config, "download-model", TINY_REPO, "--task", "classification", "--follow", "--json")
    assert followed.returncode == 0, followed.stdout + followed.stderr
    lines = [json.loads(line) for line in followed.stdout.splitlines()]
    progress = [line["data"] for line in lines if line.get("type") == "progress"]
    assert progress and progress[-1]["files_total"] >= 1 and progress[-1]["total_bytes"] > 0
    assert lines[-1]["status"] == "completed"

    # The human view: a bar, then the summary line.
    watched = _cli(config, "watch", lines[-1]["id"])
    assert watched.returncode == 0 and "completed" in watched.stdout

    classified = _cli(
        config, "tasks", "classify", "This is a great product!", "--model-name", TINY_REPO, "--json"
    )
    assert classified.returncode == 0, classified.stderr
    task = json.loads(classified.stdout)
    assert task["status"] == "completed", task
    assert task["result"]["label"] in ("negative", "positive")
