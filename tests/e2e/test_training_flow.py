"""Seed 001's whole flow against `stratus serve`: upload a CSV, train on the real worker (torch, CPU),
watch progress over the WebSocket, read results, predict, and receive signed webhooks."""

from __future__ import annotations

import asyncio
import json
import random

import httpx
import pytest
from websockets.asyncio.client import connect

from stratus.capabilities.webhooks.service import WebhookService
from tests.e2e.server import ServeProcess, messages_until_done
from tests.integration.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow


def _csv(rows: int = 400) -> bytes:
    rng = random.Random(7)
    lines = ["x1,x2,color,label"]
    for _ in range(rows):
        x1, x2 = rng.uniform(-3, 3), rng.uniform(-3, 3)
        color = rng.choice(["red", "green", "blue"])
        label = "yes" if x1 + 0.5 * x2 + (1.0 if color == "red" else 0.0) > 0.3 else "no"
        lines.append(f"{x1:.4f},{x2:.4f},{color},{label}")
    return ("\n".join(lines) + "\n").encode()


async def test_upload_train_watch_results_predict_webhooks(stratus_server: ServeProcess) -> None:
    base = stratus_server.base_url
    receiver = Receiver()
    await receiver.start()
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            creds = {"email": "trainer@example.com", "password": "securepass123", "name": "Trainer"}
            token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
            auth = {"Authorization": f"Bearer {token}"}
            hook = await http.post(
                "/api/webhooks",
                headers=auth,
                json={
                    "url": receiver.url,
                    "events": ["training.started", "training.progress", "training.completed"],
                },
            )
            assert hook.status_code == 201, hook.text
            secret = hook.json()["secret"]

            upload = await http.post(
                "/datasets/upload",
                headers=auth,
                files={"file": ("customers.csv", _csv())},
                data={"name": "customers", "dataset_type": "classification"},
            )
            assert upload.status_code == 201, upload.text
            dataset_id = upload.json()["id"]

            ws_url = base.replace("http", "ws") + f"/ws?token={token}"
            async with connect(ws_url) as ws:
                assert json.loads(await ws.recv())["type"] == "connected"
                started = await http.post(
                    "/training/start",
                    headers=auth,
                    json={
                        "dataset_id": dataset_id,
                        "model_type": "mlp",
                        "hyperparameters": {
                            "learning_rate": 0.01,
                            "batch_size": 32,
                            "epochs": 8,
                            "optimizer": "adam",
                        },
                        "validation_split": 0.25,
                        "early_stopping": {"enabled": True, "patience": 5, "monitor": "val_loss"},
                    },
                )
                assert started.status_code == 201, started.text
                job_id = started.json()["job_id"]
                await ws.send(json.dumps({"action": "subscribe", "job_id": job_id}))
                async with asyncio.timeout(120):
                    messages = await messages_until_done(ws)
            assert messages[-1]["data"]["status"] == "completed", messages[-1]
            # Updates may overtake each other in flight; their sequence numbers order them.
            progress = sorted(
                (m["data"] for m in messages if m["type"] == "progress"), key=lambda p: p["seq"]
            )
            assert len(progress) >= 2
            assert len({p["seq"] for p in progress}) == len(progress)
            assert [p["current_epoch"] for p in progress] == sorted(p["current_epoch"] for p in progress)

            results = (await http.get(f"/training/results/{job_id}", headers=auth)).json()
            accuracy = results["final_metrics"]["accuracy"]
            assert results["final_metrics"]["val_accuracy"] == accuracy  # seed 001's name for it
            assert accuracy > results["baseline"]["majority_accuracy"] + 0.1, results
            assert len(results["training_history"]["loss"]) >= 1
            model_id = results["model_id"]

            model = (await http.get(f"/models/{model_id}", headers=auth)).json()
            assert model["performance"]["accuracy"] == pytest.approx(accuracy)
            prediction = await http.post(
                f"/models/{model_id}/predict",
                headers=auth,
                json={"inputs": [[2.5, 2.0, "red"], {"x1": -2.8, "x2": -2.5, "color": "blue"}]},
            )
            assert prediction.status_code == 200, prediction.text
            classes = [p["class"] for p in prediction.json()["predictions"]]
            assert classes == ["yes", "no"]
            assert all(0.5 <= p["confidence"] <= 1 for p in prediction.json()["predictions"])

        # Webhooks are delivered by the queue worker: wait for the completion one.
        async with asyncio.timeout(30):
            while not any(json.loads(r.body)["event"] == "training.completed" for r in receiver.requests):
                await asyncio.sleep(0.2)
        events = [json.loads(r.body)["event"] for r in receiver.requests]
        assert {"training.started", "training.progress", "training.completed"} <= set(events)
        for request in receiver.requests:
            assert WebhookService.verify(secret, request.headers, request.body)
    finally:
        await receiver.stop()
