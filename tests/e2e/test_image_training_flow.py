"""Seed 001's flow on an image dataset against `stratus serve`: upload a ZIP of one folder per class,
train (the image_training kind on the real worker, the shipped EfficientNet-Lite0 on the CPU), status,
results, the models list and detail, predictions on images by the inference worker (multipart and
base64); and seed 002's start/status/stop on the same dataset."""

from __future__ import annotations

import asyncio
import base64
import random

import httpx
import pytest

from tests.e2e.server import ServeProcess
from tests.synthetic_images import png, shape_image, shapes_zip

pytestmark = pytest.mark.slow


async def _until(http: httpx.AsyncClient, path: str, auth: dict[str, str], statuses: tuple[str, ...]) -> dict:
    async with asyncio.timeout(180):
        while True:
            status = (await http.get(path, headers=auth)).json()
            if status["status"] in statuses:
                return dict(status)
            await asyncio.sleep(0.5)


async def test_upload_train_results_models_predict_on_images(stratus_server: ServeProcess) -> None:
    async with httpx.AsyncClient(base_url=stratus_server.base_url, timeout=60) as http:
        creds = {"email": "vision@example.com", "password": "securepass123", "name": "Vision"}
        token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        upload = await http.post(
            "/datasets/upload",
            headers=auth,
            files={"file": ("shapes.zip", shapes_zip(24, corrupt=1))},
            data={"name": "shapes", "dataset_type": "classification"},
        )
        assert upload.status_code == 201, upload.text
        dataset_id = upload.json()["id"]

        started = await http.post(
            "/training/start",
            headers=auth,
            json={
                "dataset_id": dataset_id,
                "model_type": "efficientnet-lite0",
                "hyperparameters": {"learning_rate": 0.01, "batch_size": 16, "epochs": 4, "image_size": 64},
                "validation_split": 0.25,
                "early_stopping": {"enabled": True, "patience": 3, "monitor": "val_loss"},
            },
        )
        assert started.status_code == 201, started.text
        job_id = started.json()["job_id"]
        status = await _until(http, f"/training/status/{job_id}", auth, ("completed", "failed", "stopped"))
        assert status["status"] == "completed", status
        assert status["current_epoch"] >= 1 and status["progress"] == 100

        results = (await http.get(f"/training/results/{job_id}", headers=auth)).json()
        final = results["final_metrics"]
        assert final["val_accuracy"] >= 0.9 and final["images_skipped"] == 1, final
        assert {"train_loss", "train_accuracy", "val_loss", "val_accuracy"} <= set(final)
        assert set(results["training_history"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
        model_id = results["model_id"]

        listed = (await http.get("/models", headers=auth, params={"model_type": "efficientnet-lite0"})).json()
        assert [m["id"] for m in listed["models"]] == [model_id] and listed["total"] == 1
        assert listed["models"][0]["accuracy"] == pytest.approx(final["accuracy"])
        model = (await http.get(f"/models/{model_id}", headers=auth)).json()
        assert model["architecture"]["input_shape"] == [64, 64, 3]
        assert (
            model["architecture"]["output_classes"] == 3 and model["architecture"]["parameters"] > 3_000_000
        )
        performance = model["performance"]
        assert performance["accuracy"] == pytest.approx(final["accuracy"]) and performance["f1_score"] > 0.8
        assert performance["confusion_matrix"]["labels"] == ["circle", "square", "triangle"]

        rng = random.Random(99)  # images the model never saw
        held_out = {label: png(shape_image(label, rng)) for label in ("circle", "square", "triangle")}
        one = await http.post(
            f"/models/{model_id}/predict", headers=auth, files={"image": ("c.png", held_out["circle"])}
        )
        assert one.status_code == 200, one.text
        assert one.json()["predictions"][0]["class"] == "circle"
        batch = await http.post(
            f"/models/{model_id}/predict",
            headers=auth,
            json={"inputs": [base64.b64encode(data).decode() for data in held_out.values()]},
        )
        assert batch.status_code == 200, batch.text
        predictions = batch.json()["predictions"]
        assert [p["class"] for p in predictions] == list(held_out)
        assert all(0 < p["confidence"] <= 1 and len(p["top"]) == 3 for p in predictions)
        # Seed 002's classify route answers with the trained model when named by its id.
        classified = await http.post(
            "/api/image-recognition/classify",
            headers=auth,
            files={"image": ("c.png", held_out["circle"])},
            data={"model": model_id, "top_k": "2"},
        )
        assert classified.status_code == 200, classified.text
        labels = classified.json()["classifications"]
        assert (
            len(labels) == 2
            and labels[0]["label"] == "circle"
            and labels[0]["confidence"] > labels[1]["confidence"]
        )
        broken = await http.post(
            f"/models/{model_id}/predict", headers=auth, json={"input": "bm90IGFuIGltYWdl"}
        )
        assert broken.status_code == 400 and "not an image" in broken.json()["detail"]

        # Seed 002 on the same dataset (named by its name), followed and stopped.
        seed002 = await http.post(
            "/api/training/start",
            headers=auth,
            json={"model_type": "image_classifier", "base_model": "efficientnet-lite0", "dataset_path": "shapes",
                  "epochs": 200, "batch_size": 8, "learning_rate": 0.001},
        )  # fmt: skip
        assert seed002.status_code == 201, seed002.text
        task_id = seed002.json()["task_id"]
        running = await _until(http, f"/api/training/status/{task_id}", auth, ("running", "failed"))
        assert running["status"] == "running" and running["total_epochs"] == 200
        stopped = await http.post(f"/api/training/stop/{task_id}", headers=auth)
        assert stopped.status_code == 200
        final_status = await _until(http, f"/api/training/status/{task_id}", auth, ("stopped", "failed"))
        assert final_status["status"] == "stopped", final_status
