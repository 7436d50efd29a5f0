"""Seed 000's model workflow against `stratus serve`: download a model from the hub (a local server
speaking its protocol), watch the download on /ws/download/{id}, read its info, then classify with it."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.server import ServeProcess, free_port, messages_until_done
from tests.hub_server import TINY_REPO, HubServer, tiny_sentiment_repo

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    root = tmp_path_factory.mktemp("hub")
    tiny_sentiment_repo(root / TINY_REPO)
    with HubServer(root, delay_s=0.3) as server:  # slow enough to watch the files arrive
        yield server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, hub: HubServer) -> Iterator[ServeProcess]:
    hf_home = tmp_path_factory.mktemp("hf-home")
    process = ServeProcess(
        tmp_path_factory.mktemp("state"),
        free_port(),
        env={"HF_ENDPOINT": hub.url, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "0"},
    )
    process.start()
    yield process
    returncode, output = process.stop()
    assert returncode == 0, output


async def test_download_watch_and_use_a_model(server: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=60) as http:
        creds = {"email": "nlp@example.com", "password": "securepass123", "name": "NLP"}
        token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        started = await http.post(
            "/models/download", headers=auth, json={"model_name": TINY_REPO, "task_type": "classification"}
        )
        assert started.status_code == 202, started.text
        download_id = started.json()["download_id"]

        ws_url = server.base_url.replace("http", "ws") + f"/ws/download/{download_id}?token={token}"
        async with connect(ws_url) as ws, asyncio.timeout(90):
            messages = await messages_until_done(ws)
        assert messages[-1]["data"]["status"] == "completed", messages[-1]
        progress = sorted((m["data"] for m in messages if m["type"] == "progress"), key=lambda p: p["seq"])
        assert progress, messages
        assert [p["files_done"] for p in progress] == sorted(p["files_done"] for p in progress)
        assert progress[-1]["bytes_downloaded"] <= progress[-1]["total_bytes"]
        assert all(p["download_id"] == download_id for p in progress)

        info = (await http.get(f"/models/{TINY_REPO}/info", headers=auth)).json()
        assert info["status"] == "ready" and info["labels"] == ["negative", "positive"]

        response = await http.post(
            "/tasks/classification",
            headers={**auth, "Prefer": "wait=25"},
            json={"text": "This is a great product!", "model_name": TINY_REPO},
        )
        task = response.json()
        async with asyncio.timeout(120):
            while task["status"] == "pending":
                await asyncio.sleep(0.3)
                task = (await http.get(f"/api/tasks/{task['task_id']}", headers=auth)).json()
        assert task["status"] == "completed", task
        assert task["result"]["method"] == "sequence-classification"
        assert task["result"]["label"] in ("negative", "positive")
