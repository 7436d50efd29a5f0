"""Training requests on image datasets: what the API refuses before a job exists, and the
`image_training` job (its kind, backbone and parameters) it queues for the worker."""

from __future__ import annotations

from typing import Any

import httpx

from tests.integration.api.accounts import Account
from tests.synthetic_images import shapes_zip


async def _images(client: httpx.AsyncClient, account: Account, data: bytes, name: str = "shapes") -> str:
    response = await client.post(
        "/datasets/upload",
        headers=account.headers,
        files={"file": (f"{name}.zip", data)},
        data={"name": name, "dataset_type": "classification"},
    )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def _start(dataset_id: str, **extra: Any) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "hyperparameters": {"epochs": 2, "image_size": 64}, **extra}


async def test_an_image_dataset_becomes_an_image_training_job(
    client: httpx.AsyncClient, alice: Account
) -> None:
    dataset_id = await _images(client, alice, shapes_zip(4))
    started = await client.post("/training/start", headers=alice.headers, json=_start(dataset_id))
    assert started.status_code == 201, started.text
    job = (await client.get(f"/api/jobs/{started.json()['job_id']}", headers=alice.headers)).json()
    assert job["kind"] == "image_training" and job["task"] == "image_classification"
    assert job["model_type"] == "efficientnet-lite0"  # no backbone named: the shipped one
    seed002 = await client.post(
        "/api/training/start",
        headers=alice.headers,
        json={"model_type": "image_classifier", "base_model": "efficientnet-lite0", "dataset_path": "shapes"},
    )
    assert seed002.status_code == 201, seed002.text


async def test_bad_image_requests_are_refused_with_the_field(
    client: httpx.AsyncClient, alice: Account
) -> None:
    one_class = await _images(client, alice, shapes_zip(6, classes=("circle",)), "one")
    small = await _images(client, alice, shapes_zip(3), "small")
    good = await _images(client, alice, shapes_zip(4), "good")
    cases = [
        (_start(one_class), 422, "TOO_FEW_CLASSES", "dataset_id"),
        (_start(small), 422, "CLASS_TOO_SMALL", "dataset_id"),
        (_start(good, model_type="alexnet"), 422, "UNKNOWN_BACKBONE", "model_type"),
        (_start(good, hyperparameters={"image_size": 8}), 422, None, "hyperparameters.image_size"),
    ]
    for body, status, code, field in cases:
        response = await client.post("/training/start", headers=alice.headers, json=body)
        assert response.status_code == status, response.text
        if code:
            assert response.json()["code"] == code
        assert response.json()["details"][0]["field"] == field
    unknown = await client.post(
        "/training/start", headers=alice.headers, json=_start(good, model_type="alexnet")
    )
    assert "resnet50" in unknown.json()["message"] and "efficientnet-lite0" in unknown.json()["message"]
    assert (await client.get("/api/jobs", headers=alice.headers)).json()["jobs"] == []
