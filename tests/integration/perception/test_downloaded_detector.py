"""General object detection's production path end to end: a transformers detector downloaded with POST
/models/download (a tiny random YOLOS served by a local stand-in for the hub), then named in
POST /api/image-recognition/detect: the inference worker answers with the model's own labels, and
another user cannot use it."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from stratus.composition import Container
from stratus.local.runtime import LocalConsumers, LocalPorts
from tests.hub_server import HubServer
from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # a download worker subprocess and the inference worker

REPO = "stratus-test/tiny-yolos"


@pytest.fixture
def hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    from transformers import YolosConfig, YolosForObjectDetection, YolosImageProcessor

    root = tmp_path / "hub"
    config = YolosConfig(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=37, image_size=[64, 64],
        patch_size=16, num_detection_tokens=5, id2label={0: "cat", 1: "dog"}, label2id={"cat": 0, "dog": 1},
    )  # fmt: skip
    YolosForObjectDetection(config).save_pretrained(root / REPO)
    YolosImageProcessor(size={"shortest_edge": 64, "longest_edge": 64}).save_pretrained(root / REPO)
    with HubServer(root) as server:
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


async def test_a_downloaded_detector_serves_detect(
    client: httpx.AsyncClient, alice: Account, bob: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    started = await client.post(
        "/models/download", headers=alice.headers, json={"model_name": REPO, "task_type": "object-detection"}
    )
    assert started.status_code == 202, started.text
    async with asyncio.timeout(120):
        while True:
            download: dict[str, Any] = (
                await client.get(f"/models/download/{started.json()['download_id']}", headers=alice.headers)
            ).json()
            if download["status"] in ("completed", "failed", "stopped"):
                break
            await asyncio.sleep(0.3)
    assert download["status"] == "completed", download

    buffer = io.BytesIO()
    Image.fromarray(np.full((100, 120, 3), 127, dtype=np.uint8)).save(buffer, format="PNG")
    form = {"model": REPO, "threshold": "0"}
    found = await client.post(
        "/api/image-recognition/detect", headers=alice.headers, files={"image": ("i.png", buffer.getvalue())},
        data=form,
    )  # fmt: skip
    assert found.status_code == 200, found.text
    body = found.json()
    assert body["model"] == REPO and body["labels"] == ["cat", "dog"] and len(body["detections"]) == 5
    assert all(d["label"] in {"cat", "dog"} for d in body["detections"])
    theirs = await client.post(
        "/api/image-recognition/detect", headers=bob.headers, files={"image": ("i.png", buffer.getvalue())},
        data=form,
    )  # fmt: skip
    assert theirs.status_code == 404
