"""Seed 000's POST /models/download end to end in the local runtime: the API records a job, the queue
consumer dispatches it, the real worker subprocess fetches the repository from a local server speaking
the hub's protocol, and its result registers the model."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalConsumers, LocalPorts
from tests.hub_server import TINY_REPO, HubServer, closed_port, tiny_sentiment_repo
from tests.integration.api.accounts import Account
from tests.integration.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow  # the worker is a fresh interpreter


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    tiny_sentiment_repo(root / TINY_REPO)
    return root


@pytest.fixture
def hub(hub_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """The hub the worker subprocesses reach (they inherit the environment)."""
    with HubServer(hub_root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.fixture
async def consumers(container: Container, ports: LocalPorts) -> AsyncIterator[LocalConsumers]:
    running = LocalConsumers(container, ports, sweep_every_s=3600)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def _until_finished(client: httpx.AsyncClient, account: Account, download_id: str) -> dict[str, Any]:
    async with asyncio.timeout(90):
        while True:
            body: dict[str, Any] = (
                await client.get(f"/models/download/{download_id}", headers=account.headers)
            ).json()
            if body["status"] in ("completed", "failed", "stopped"):
                return body
            await asyncio.sleep(0.2)


async def test_a_download_registers_a_described_model(
    client: httpx.AsyncClient, alice: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        hook = await client.post(
            "/api/webhooks", headers=alice.headers, json={"url": receiver.url, "events": ["model.downloaded"]}
        )
        assert hook.status_code == 201, hook.text

        # WHEN seed 000's request is sent
        started = await client.post(
            "/models/download",
            headers=alice.headers,
            json={"model_name": TINY_REPO, "task_type": "classification"},
        )
        # THEN a download job is queued, with where to follow it
        assert started.status_code == 202, started.text
        download = started.json()
        assert download["status"] == "queued" and download["model_name"] == TINY_REPO
        assert started.headers["location"] == f"/models/download/{download['download_id']}"
        assert download["websocket"] == f"/ws/download/{download['download_id']}"
        # AND asking again while it runs returns the same download
        again = await client.post(
            "/models/download",
            headers=alice.headers,
            json={"model_name": TINY_REPO, "task_type": "classification"},
        )
        assert again.json()["download_id"] == download["download_id"]

        finished = await _until_finished(client, alice, download["download_id"])
        assert finished["status"] == "completed", finished
        assert finished["files_done"] == finished["files_total"] >= 4  # config, weights, tokenizer files
        assert finished["bytes_downloaded"] == finished["total_bytes"] > 0 and finished["progress"] == 100.0
        async with asyncio.timeout(10):
            while not receiver.requests:
                await asyncio.sleep(0.05)
    finally:
        await receiver.stop()

    # THEN the model is in the registry, described from its files
    listed = (await client.get("/models", headers=alice.headers, params={"source": "hub"})).json()
    assert [m["name"] for m in listed["models"]] == [TINY_REPO]
    assert listed["models"][0]["id"] == finished["model_id"]
    info = (await client.get(f"/models/{TINY_REPO}/info", headers=alice.headers)).json()
    assert info["status"] == "ready" and info["source"] == "hub"
    assert info["architecture"] == "BertForSequenceClassification" and info["model_type"] == "bert"
    assert info["labels"] == ["negative", "positive"] and info["max_sequence_length"] == 64
    assert info["parameters"] > 100_000 and info["task"] == "classification"
    # AND progress was recorded (what the WebSocket pushed) in files and bytes
    events = (await client.get(f"/api/jobs/{download['download_id']}/events", headers=alice.headers)).json()[
        "events"
    ]
    progress = [e["data"] for e in events if e["type"] == "progress"]
    assert progress and progress[-1]["files_done"] == progress[-1]["files_total"]
    # AND the webhook said so
    payload = json.loads(receiver.requests[0].body)
    assert payload["event"] == "model.downloaded"
    assert payload["data"]["model_name"] == TINY_REPO and payload["data"]["model_id"] == finished["model_id"]
    # AND a second request finds it instead of downloading again
    repeat = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": TINY_REPO, "task_type": "classification"},
    )
    assert repeat.status_code == 200 and repeat.json()["status"] == "available"
    assert repeat.json()["model_id"] == finished["model_id"]
    assert hub.fetched[f"{TINY_REPO}/model.safetensors"] == 1


async def test_an_unreachable_hub_fails_the_download_with_the_reason(
    client: httpx.AsyncClient,
    alice: Account,
    consumers: LocalConsumers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": "distilbert-base-uncased", "task_type": "classification"},
    )
    assert started.status_code == 202, started.text
    finished = await _until_finished(client, alice, started.json()["download_id"])
    assert finished["status"] == "failed"
    assert "could not be reached" in finished["error"] and "distilbert-base-uncased" in finished["error"]
    # Nothing was registered; the model's info says what happened to its download
    assert (await client.get("/models", headers=alice.headers, params={"source": "hub"})).json()["total"] == 0
    info = (await client.get("/models/distilbert-base-uncased/info", headers=alice.headers)).json()
    assert info["status"] == "failed" and info["error"] == finished["error"]


async def test_download_requests_are_validated(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    cases = [
        ({"model_name": "../../etc/passwd", "task_type": "classification"}, "model_name"),
        ({"model_name": "bert-base-uncased", "task_type": "translation"}, "task_type"),
        ({"task_type": "classification"}, "model_name"),
    ]
    for body, field in cases:
        response = await client.post("/models/download", headers=alice.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == field
    builtin = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": "sentence-transformers/all-MiniLM-L6-v2", "task_type": "embeddings"},
    )
    assert builtin.status_code == 200
    assert builtin.json()["status"] == "available" and builtin.json()["source"] == "builtin"
    assert (await client.get("/api/jobs", headers=alice.headers)).json()["jobs"] == []
    unknown = await client.get("/models/nobody/nothing/info", headers=alice.headers)
    assert unknown.status_code == 404
    assert "sentence-transformers/all-MiniLM-L6-v2" in unknown.json()["details"]["available"]
    assert (await client.get(f"/models/download/{ObjectId()}", headers=bob.headers)).status_code == 404
    assert (
        await client.post("/models/download", json={"model_name": "x", "task_type": "ner"})
    ).status_code == 401
