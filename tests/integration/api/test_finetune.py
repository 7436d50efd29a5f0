"""Seed 003's fine-tune job records end to end: create, list, get, status updates, bad input, and their
place in the jobs collection (listed by /api/jobs, never touched by the job pipeline)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.capabilities.finetune.schemas import FINETUNE_STATUSES
from stratus.composition import Container
from stratus.jobs.lifecycle import ACTIVE as ACTIVE_STATES
from stratus.schemas.common import utcnow
from tests.integration.api.accounts import Account

CSV = b"x1,x2,label\n" + b"".join(
    f"{i % 7},{(i * 3) % 5},{'yes' if i % 3 else 'no'}\n".encode() for i in range(30)
)
SEED_FIELDS = {
    "_id",
    "id",
    "user_id",
    "model_id",
    "dataset_id",
    "base_model",
    "status",
    "progress",
    "current_step",
    "logs",
    "created_at",
    "completed_at",
}


async def _dataset(client: httpx.AsyncClient, account: Account) -> str:
    response = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": ("train.csv", CSV)}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


async def _model(client: httpx.AsyncClient, account: Account) -> str:
    body = {"name": "My Fine-tuned Model", "base_model": "gpt-3.5-turbo", "version": "1.0.0"}
    response = await client.post("/api/models", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


async def _create(client: httpx.AsyncClient, account: Account, **body: Any) -> dict[str, Any]:
    response = await client.post("/api/finetune", headers=account.headers, json=body)
    assert response.status_code == 201, response.text
    result: dict[str, Any] = response.json()
    return result


async def _fine_tune_jobs(client: httpx.AsyncClient, account: Account) -> int:
    return int((await client.get("/api/auth/me", headers=account.headers)).json()["fine_tune_jobs"])


def test_client_statuses_never_collide_with_the_pipelines() -> None:
    # The dispatcher and the sweepers act on ACTIVE_STATES only: no client status may be one of them.
    assert set(FINETUNE_STATUSES).isdisjoint(ACTIVE_STATES)


async def test_seed_examples_create_list_get_and_update(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _dataset(client, alice)
    # WHEN seed 003's curl example creates a job
    first = await _create(
        client, alice, dataset_id=dataset_id, base_model="gpt-3.5-turbo", status="preparing", progress=0
    )
    # THEN it has exactly seed 003's fields (plus `id`, sent with every resource)
    assert set(first) == SEED_FIELDS
    assert first["_id"] == first["id"] and first["user_id"] == alice.user_id
    assert (first["dataset_id"], first["base_model"], first["status"], first["progress"]) == (
        dataset_id,
        "gpt-3.5-turbo",
        "preparing",
        0,
    )
    assert first["model_id"] is None and first["current_step"] is None and first["logs"] is None
    assert first["created_at"].endswith("Z") and first["completed_at"] is None
    # AND the documented request body works as written, defaults included
    second = await _create(
        client,
        alice,
        dataset_id=dataset_id,
        base_model="gpt-3.5-turbo",
        model_id=None,
        status="preparing",
        progress=0,
        current_step="Initializing",
        logs="Job created successfully",
    )
    assert (second["current_step"], second["logs"]) == ("Initializing", "Job created successfully")
    defaults = await _create(client, alice, dataset_id=dataset_id, base_model="llama-2-7b")
    assert (defaults["status"], defaults["progress"]) == ("preparing", 0)
    assert await _fine_tune_jobs(client, alice) == 3

    # Listing: newest first, limit/offset, total in X-Total-Count
    listed = await client.get("/api/finetune?limit=10&offset=0", headers=alice.headers)
    assert listed.status_code == 200 and listed.headers["X-Total-Count"] == "3"
    assert [j["_id"] for j in listed.json()] == [defaults["_id"], second["_id"], first["_id"]]
    paged = await client.get("/api/finetune?limit=1&offset=1", headers=alice.headers)
    assert [j["_id"] for j in paged.json()] == [second["_id"]]
    got = await client.get(f"/api/finetune/{first['_id']}", headers=alice.headers)
    assert got.status_code == 200 and got.json() == first

    # WHEN seed 003's PATCH example moves it to training (query parameters)
    path = f"/api/finetune/{first['_id']}/status"
    training = await client.patch(
        f"{path}?status_update=training&progress=50&current_step=Training%20model&logs=Epoch%205/10%20completed",
        headers=alice.headers,
    )
    assert training.status_code == 200, training.text
    body = training.json()
    assert (body["status"], body["progress"], body["current_step"], body["logs"]) == (
        "training",
        50,
        "Training model",
        "Epoch 5/10 completed",
    )
    assert body["completed_at"] is None
    # AND an update that only sets the status leaves the rest alone
    only_status = (await client.patch(f"{path}?status_update=training", headers=alice.headers)).json()
    assert (only_status["progress"], only_status["logs"]) == (50, "Epoch 5/10 completed")

    # WHEN it is set to completed, with the resulting model
    model_id = await _model(client, alice)
    done = await client.patch(
        path,
        headers=alice.headers,
        params={
            "status_update": "completed",
            "progress": 100,
            "current_step": "Completed",
            "logs": "Fine-tuning completed successfully",
            "model_id": model_id,
        },
    )
    # THEN completed_at is stamped
    assert done.status_code == 200, done.text
    completed = done.json()
    assert (completed["status"], completed["progress"], completed["model_id"]) == ("completed", 100, model_id)
    assert completed["completed_at"].endswith("Z") and completed["completed_at"] >= completed["created_at"]
    assert (await client.get(f"/api/finetune/{first['_id']}", headers=alice.headers)).json() == completed
    # AND sending completed again keeps the first stamp
    again = (await client.patch(f"{path}?status_update=completed", headers=alice.headers)).json()
    assert again["completed_at"] == completed["completed_at"]
    # AND the same change as a JSON body works too; leaving completed clears the stamp
    failed = await client.patch(path, headers=alice.headers, json={"status": "failed", "logs": "OOM"})
    assert failed.status_code == 200, failed.text
    assert (failed.json()["status"], failed.json()["logs"], failed.json()["completed_at"]) == (
        "failed",
        "OOM",
        None,
    )
    # AND the counter counted creations only
    assert await _fine_tune_jobs(client, alice) == 3


async def test_records_are_jobs_of_kind_finetune(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _dataset(client, alice)
    record = await _create(
        client, alice, dataset_id=dataset_id, base_model="gpt-3.5-turbo", status="training"
    )
    jobs = await client.get("/api/jobs?kind=finetune", headers=alice.headers)
    assert jobs.status_code == 200
    listed = jobs.json()["jobs"]
    assert [(j["_id"], j["kind"], j["status"]) for j in listed] == [(record["_id"], "finetune", "training")]
    job = await client.get(f"/api/jobs/{record['_id']}", headers=alice.headers)
    assert job.status_code == 200 and job.json()["dataset_id"] == dataset_id
    assert (await client.get("/api/jobs?kind=training", headers=alice.headers)).json()["jobs"] == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"dataset_id": None}, "dataset_id"),
        ({"dataset_id": "not-an-id"}, "dataset_id"),
        ({"base_model": None}, "base_model"),
        ({"base_model": ""}, "base_model"),
        ({"progress": 101}, "progress"),
        ({"progress": -1}, "progress"),
        ({"progress": 12.5}, "progress"),
        ({"status": "running"}, "status"),
        ({"model_id": "xyz"}, "model_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
async def test_bad_create_requests_name_the_field(
    client: httpx.AsyncClient, alice: Account, change: dict[str, Any], field: str
) -> None:
    body = {"dataset_id": str(ObjectId()), "base_model": "gpt-3.5-turbo", **change}
    body = {k: v for k, v in body.items() if v is not None}
    response = await client.post("/api/finetune", headers=alice.headers, json=body)
    assert response.status_code == 422, response.text
    assert [d["field"] for d in response.json()["details"]] == [field]
    assert response.json()["detail"][0]["loc"][-1] == field


async def test_bad_status_updates_name_the_field(client: httpx.AsyncClient, alice: Account) -> None:
    record = await _create(
        client, alice, dataset_id=await _dataset(client, alice), base_model="gpt-3.5-turbo"
    )
    path = f"/api/finetune/{record['_id']}/status"
    cases: list[tuple[dict[str, Any], dict[str, Any] | None, str]] = [
        ({}, None, "status_update"),
        ({"progress": 10}, None, "status_update"),
        ({"status_update": "running"}, None, "status_update"),
        ({"status_update": "training", "progress": 101}, None, "progress"),
        ({"status_update": "training", "progress": -5}, None, "progress"),
        ({"status_update": "training", "model_id": "nope"}, None, "model_id"),
        ({}, {"status": "queued"}, "status"),
        ({}, {"status": "training", "progress": 1000}, "progress"),
        ({}, {}, "status_update"),
        ({"status_update": "training"}, {"status": "failed"}, "status_update"),
    ]
    for params, body, field in cases:
        response = await client.patch(path, headers=alice.headers, params=params, json=body)
        assert response.status_code == 422, (params, body, response.text)
        assert [d["field"] for d in response.json()["details"]] == [field], (params, body)
    # AND nothing changed
    assert (await client.get(f"/api/finetune/{record['_id']}", headers=alice.headers)).json() == record
    # AND query and body may both be sent when they agree (an empty or matching body is harmless)
    both = await client.patch(
        path, headers=alice.headers, params={"status_update": "training"}, json={"status_update": "training"}
    )
    assert both.status_code == 200 and both.json()["status"] == "training"


async def test_unknown_dataset_model_and_job_are_404(
    client: httpx.AsyncClient, alice: Account, bob: Account, container: Container
) -> None:
    dataset_id = await _dataset(client, alice)
    cases = [
        (alice, {"dataset_id": str(ObjectId())}, "Dataset not found"),
        (bob, {"dataset_id": dataset_id}, "Dataset not found"),
        (alice, {"dataset_id": dataset_id, "model_id": str(ObjectId())}, "Model not found"),
        (alice, {"dataset_id": dataset_id, "model_id": await _model(client, bob)}, "Model not found"),
    ]
    for account, body, message in cases:
        response = await client.post(
            "/api/finetune", headers=account.headers, json={"base_model": "gpt-3.5-turbo", **body}
        )
        assert response.status_code == 404 and response.json()["detail"] == message, (body, response.text)
    # Nothing was recorded or counted
    assert await _fine_tune_jobs(client, alice) == 0 and await _fine_tune_jobs(client, bob) == 0
    assert (await client.get("/api/finetune", headers=alice.headers)).json() == []

    record = await _create(client, alice, dataset_id=dataset_id, base_model="gpt-3.5-turbo")
    missing = await client.get(f"/api/finetune/{ObjectId()}", headers=alice.headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "Fine-tune job not found"
    patched = await client.patch(
        f"/api/finetune/{record['_id']}/status",
        headers=alice.headers,
        params={"status_update": "completed", "model_id": str(ObjectId())},
    )
    assert patched.status_code == 404 and patched.json()["detail"] == "Model not found"

    # A training job shares the collection but is not a fine-tune record: neither visible nor changeable here
    training = await container.job_repo.insert(
        {
            "user_id": ObjectId(alice.user_id),
            "kind": "training",
            "status": "queued",
            "dataset_id": ObjectId(dataset_id),
        }
    )
    training_id = str(training[0]["_id"])
    for method, path, params in (
        ("GET", f"/api/finetune/{training_id}", None),
        ("PATCH", f"/api/finetune/{training_id}/status", {"status_update": "completed"}),
    ):
        response = await client.request(method, path, headers=alice.headers, params=params)
        assert response.status_code == 404 and response.json()["detail"] == "Fine-tune job not found"
    assert (await container.job_repo.get(ObjectId(training_id)) or {})["status"] == "queued"
    assert [j["_id"] for j in (await client.get("/api/finetune", headers=alice.headers)).json()] == [
        record["_id"]
    ]


async def test_the_job_pipeline_leaves_client_records_alone(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    dataset_id = await _dataset(client, alice)
    records = [
        await _create(client, alice, dataset_id=dataset_id, base_model="gpt-3.5-turbo", status=status)
        for status in FINETUNE_STATUSES
    ]
    ids = [ObjectId(r["_id"]) for r in records]
    # GIVEN the records look long abandoned
    await container.job_repo.collection.update_many(
        {"_id": {"$in": ids}}, {"$set": {"updated_at": utcnow() - timedelta(days=2)}}
    )
    # WHEN the dispatcher is handed them and both sweepers run
    for job_id in ids:
        await container.jobs.dispatch(job_id)
    await container.jobs.sweep()
    await container.job_events.sweep()
    # THEN each record is exactly as the client left it
    for record in records:
        got = await client.get(f"/api/finetune/{record['_id']}", headers=alice.headers)
        assert got.json() == record
        stored = await container.job_repo.get(ObjectId(record["_id"]))
        assert stored is not None and stored["managed_by"] == "client" and "claimed_at" not in stored
    # AND they neither count as running jobs nor hold their dataset
    assert await container.job_repo.count_running(ObjectId(alice.user_id), "finetune") == 0
    assert not await container.job_repo.dataset_in_use(ObjectId(dataset_id))
