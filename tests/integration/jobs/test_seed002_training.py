"""Seed 002's training shapes (/api/training/*, `task_id`) on the same jobs as seed 001's."""

from __future__ import annotations

import httpx

from stratus.composition import Container
from tests.integration.api.accounts import Account
from tests.synthetic_images import shapes_zip

CSV = b"f1,f2,label\n" + b"".join(f"{i % 4},{i % 7},{i % 2}\n".encode() for i in range(30))
SEED_002_BODY = {
    "model_type": "image_classifier",
    "base_model": "resnet50",
    "dataset_path": "/datasets/my_dataset",
    "output_dir": "/models/trained",
    "epochs": 10,
    "batch_size": 8,
    "learning_rate": 0.0001,
    "save_steps": 500,
}


async def _upload(client: httpx.AsyncClient, account: Account, name: str, filename: str, data: bytes) -> str:
    response = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": (filename, data)}, data={"name": name}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


async def test_seed_002_example_starts_a_job_and_reports_status(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    dataset_id = await _upload(client, alice, "my_dataset", "data.csv", CSV)
    started = await client.post("/api/training/start", headers=alice.headers, json=SEED_002_BODY)
    assert started.status_code == 201, started.text
    task_id = started.json()["task_id"]
    assert started.json()["status"] == "queued"
    job = (await client.get(f"/api/jobs/{task_id}", headers=alice.headers)).json()
    assert (
        job["dataset_id"] == dataset_id
        and job["model_type"] == "image_classifier"
        and job["total_epochs"] == 10
    )

    status = (await client.get(f"/api/training/status/{task_id}", headers=alice.headers)).json()
    assert set(status) >= {"task_id", "status", "progress", "current_epoch", "total_epochs", "current_step",
                           "total_steps", "loss", "learning_rate", "metrics"}  # fmt: skip
    stopped = await client.post(f"/api/training/stop/{task_id}", headers=alice.headers)
    assert stopped.status_code == 200 and stopped.json()["status"] == "stopped"


async def test_dataset_path_must_name_one_of_your_datasets(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    await _upload(client, bob, "my_dataset", "data.csv", CSV)
    response = await client.post("/api/training/start", headers=alice.headers, json=SEED_002_BODY)
    assert response.status_code == 404 and response.json()["detail"] == "Dataset not found"
    missing = await client.post("/api/training/start", headers=alice.headers, json={"epochs": 1})
    assert missing.status_code == 422 and missing.json()["details"][0]["field"] == "dataset_path"


async def test_a_hub_backbone_must_be_downloaded_first(client: httpx.AsyncClient, alice: Account) -> None:
    await _upload(client, alice, "pets", "pets.zip", shapes_zip(4))
    response = await client.post(
        "/api/training/start", headers=alice.headers, json={**SEED_002_BODY, "dataset_path": "pets"}
    )
    assert response.status_code == 409 and response.json()["code"] == "BACKBONE_NOT_DOWNLOADED"
    assert "microsoft/resnet-50" in response.json()["detail"]
