"""Training requests on image datasets: what the API refuses before a job exists, and the
`image_training` job (its kind, backbone and parameters) it queues for the worker."""

from __future__ import annotations

from typing import Any

import httpx
from bson import ObjectId

from stratus.composition import Container
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
    assert job["kind"] == "image_training" and job["objective"] == "image_classification"
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


async def test_a_downloaded_hub_checkpoint_is_the_backbone_by_seed_name_or_id(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    user_id = ObjectId(alice.user_id)
    for name, architecture in (
        ("microsoft/resnet-50", "ResNetForImageClassification"),
        ("org/bert", "BertModel"),
    ):
        await container.model_repo.create(
            user_id,
            {
                "name": name,
                "name_key": name.lower(),
                "source": "hub",
                "status": "ready",
                "architecture": {"class": architecture},
                "files": ["config.json", "model.safetensors"],
                "artifacts": {"snapshot": f"hub/{name}"},
                "revision": "abc123",
            },
        )
    dataset_id = await _images(client, alice, shapes_zip(4))
    started = await client.post(
        "/training/start", headers=alice.headers, json=_start(dataset_id, model_type="resnet50")
    )
    assert started.status_code == 201, started.text
    job = await container.job_repo.get_owned(user_id, ObjectId(started.json()["job_id"]))
    assert job is not None and job["model_type"] == "resnet50"
    assert job["params"]["backbone"] == "resnet50"
    assert job["params"]["backbone_source"] == {
        "snapshot": "hub/microsoft/resnet-50",
        "files": ["config.json", "model.safetensors"],
        "architecture": "ResNetForImageClassification",
        "revision": "abc123",
    }
    text_model = await client.post(
        "/training/start", headers=alice.headers, json=_start(dataset_id, model_type="org/bert")
    )
    assert text_model.status_code == 422 and text_model.json()["code"] == "NOT_AN_IMAGE_BACKBONE"
