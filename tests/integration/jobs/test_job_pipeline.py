"""The job pipeline's services against the real database: validation, idempotency, claiming, caps,
monotonic event handling, stop rules and the heartbeat sweeper. The worker here is a real subprocess
running a small script (the real training worker has its own tests and the e2e flow)."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId
from fastapi import FastAPI

from stratus.adapters.job_env import JOB_STATE_CHANGE
from stratus.adapters.local.worker_pool import LocalProcessBackend
from stratus.api.deps import get_jobs
from stratus.composition import Container
from stratus.errors import ServiceUnavailable
from stratus.jobs.events import PROGRESS, RESULT, SAGEMAKER_STATE
from stratus.jobs.service import JobPolicy, JobService
from stratus.local.runtime import LocalPorts
from stratus.ports.events import Event
from stratus.schemas.common import utcnow
from tests.integration.api.accounts import Account

CSV = b"x1,x2,color,label\n" + b"".join(
    f"{i % 7},{(i * 3) % 5},{'red' if i % 2 else 'blue'},{'yes' if i % 3 else 'no'}\n".encode()
    for i in range(60)
)
SLEEPER = "import time; time.sleep(30)"


async def _dataset(client: httpx.AsyncClient, account: Account, data: bytes = CSV, **form: str) -> str:
    response = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": ("d.csv", data)}, data=form
    )
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


def _training(dataset_id: str, **extra: Any) -> dict[str, Any]:
    return {"dataset_id": dataset_id, "model_type": "mlp", "hyperparameters": {"epochs": 3}, **extra}


@pytest.fixture
async def sleeper_jobs(
    container: Container, app: FastAPI, tmp_path: Path
) -> AsyncIterator[tuple[JobService, list[Event]]]:
    """The API's job service, but with workers that just sleep, and their events collected."""
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    backend = LocalProcessBackend([sys.executable, "-c", SLEEPER], on_event=collect, work_dir=tmp_path / "w")
    service = JobService(
        jobs=container.job_repo,
        store=container.job_store,
        events=container.job_event_repo,
        kinds=container.job_kinds,
        datasets=container.dataset_repo,
        queue=container.ports.queue,
        backend=backend,
        storage=container.ports.storage,
        policy=JobPolicy(max_running_per_user=1),
    )
    app.dependency_overrides[get_jobs] = lambda: service
    try:
        yield service, seen
    finally:
        await backend.shutdown()


async def test_bad_training_requests(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    dataset_id = await _dataset(client, alice)
    cases = [
        (bob, _training(dataset_id), 404, "Dataset not found"),
        (alice, _training(str(ObjectId())), 404, "Dataset not found"),
        (alice, _training(dataset_id, target="nope"), 400, "Target column 'nope' not found"),
        (
            alice,
            _training(dataset_id, target="color", objective="regression"),
            400,
            "must be numeric for regression",
        ),
        # `task`, the objective's name before issue 11, is still accepted as an alias.
        (
            alice,
            _training(dataset_id, target="color", task="regression"),
            400,
            "must be numeric for regression",
        ),
    ]
    for account, body, status, message in cases:
        response = await client.post("/training/start", headers=account.headers, json=body)
        assert response.status_code == status, response.text
        assert message in response.json()["detail"]
    out_of_range = await client.post(
        "/training/start",
        headers=alice.headers,
        json=_training(dataset_id, hyperparameters={"learning_rate": 2}),
    )
    assert out_of_range.status_code == 422
    assert out_of_range.json()["details"][0]["field"] == "hyperparameters.learning_rate"
    assert (await client.get("/api/jobs", headers=alice.headers)).json()["jobs"] == []


async def test_the_objective_is_stored_as_objective_and_read_from_older_records(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    # GIVEN a training request that names the objective by its old name, `task`
    dataset_id = await _dataset(client, alice)
    body = _training(dataset_id, target="x1", task="regression")
    started = await client.post("/training/start", headers=alice.headers, json=body)
    assert started.status_code == 201, started.text
    # THEN the job stores and shows it as `objective`
    stored = await container.job_repo.get(ObjectId(started.json()["job_id"]))
    assert stored is not None and stored["objective"] == "regression" and "task" not in stored
    assert stored["params"]["objective"] == "regression"
    job = (await client.get(f"/api/jobs/{stored['_id']}", headers=alice.headers)).json()
    assert job["objective"] == "regression" and job["task"] is None
    # AND a job and a model stored before the rename (`task`) read the same
    await container.job_repo.collection.update_one(
        {"_id": stored["_id"]}, {"$set": {"task": "regression"}, "$unset": {"objective": ""}}
    )
    job = (await client.get(f"/api/jobs/{stored['_id']}", headers=alice.headers)).json()
    assert job["objective"] == "regression"
    now = utcnow()
    legacy = {"user_id": ObjectId(alice.user_id), "name": "old", "source": "trained", "status": "ready",
              "task": "classification", "created_at": now, "updated_at": now}  # fmt: skip
    hub = {**legacy, "name": "hub", "source": "hub"}  # a Hub model's `task` is an inference task
    old_id = (await container.model_repo.collection.insert_one(legacy)).inserted_id
    await container.model_repo.collection.insert_one(hub)
    record = (await client.get(f"/api/models/{old_id}", headers=alice.headers)).json()
    assert record["objective"] == "classification"
    listed = (await client.get("/models?objective=classification", headers=alice.headers)).json()
    assert [(m["name"], m["objective"]) for m in listed["models"]] == [("old", "classification")]
    records = (await client.get("/api/models?objective=classification", headers=alice.headers)).json()
    assert [r["name"] for r in records] == ["old"]
    hub_view = (await client.get("/api/models?source=hub", headers=alice.headers)).json()
    assert hub_view[0]["task"] == "classification" and hub_view[0]["objective"] is None


async def test_idempotency_key_returns_the_same_job(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _dataset(client, alice)
    headers = {**alice.headers, "Idempotency-Key": "run-1"}
    first = await client.post("/training/start", headers=headers, json=_training(dataset_id))
    again = await client.post("/training/start", headers=headers, json=_training(dataset_id))
    assert first.status_code == 201 and again.status_code == 200
    assert first.json()["job_id"] == again.json()["job_id"]
    assert first.json()["status"] == "queued" and first.json()["estimated_time"] >= 10
    assert len((await client.get("/api/jobs", headers=alice.headers)).json()["jobs"]) == 1


async def test_a_job_the_queue_never_got_is_not_left_queued(
    client: httpx.AsyncClient, alice: Account, ports: LocalPorts, monkeypatch: pytest.MonkeyPatch
) -> None:
    dataset_id = await _dataset(client, alice)

    async def down(*_: Any, **__: Any) -> str:
        raise ServiceUnavailable("queue unreachable")

    monkeypatch.setattr(ports.queue, "send", down)
    response = await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))
    assert response.status_code == 503
    assert (await client.get("/api/jobs", headers=alice.headers)).json()["jobs"] == []


async def test_dispatch_claims_once_and_respects_the_cap(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    ids = [
        (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
            "job_id"
        ]
        for _ in range(2)
    ]
    first, second = (ObjectId(i) for i in ids)
    # A message delivered twice starts one run.
    await service.dispatch(first)
    await service.dispatch(first)
    job = await container.job_repo.get(first)
    assert job is not None and job["status"] == "starting" and job["external_id"].startswith("local-")
    # Over the cap (1 here), the next job waits in `queued`.
    await service.dispatch(second)
    waiting = await container.job_repo.get(second)
    assert waiting is not None and waiting["status"] == "queued"


async def test_events_move_jobs_forward_only(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    job_id = (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
        "job_id"
    ]
    await service.dispatch(ObjectId(job_id))

    def progress(seq: int, epoch: int) -> dict[str, Any]:
        detail = {"job_id": job_id, "seq": seq, "epoch": epoch, "total_epochs": 3, "progress": epoch / 3 * 100,
                  "metrics": {"loss": 1.0 / epoch}}  # fmt: skip
        return Event(PROGRESS, detail).envelope()

    await container.job_events.handle(progress(2, 2))
    await container.job_events.handle(progress(1, 1))  # late: ignored
    await container.job_events.handle(progress(2, 2))  # duplicate: ignored
    status = (await client.get(f"/training/status/{job_id}", headers=alice.headers)).json()
    assert (
        status["status"] == "running"
        and status["current_epoch"] == 2
        and status["progress"] == pytest.approx(66.67)
    )

    result = {
        "job_id": job_id, "seq": 3, "status": "completed", "final_metrics": {"accuracy": 0.9, "f1": 0.88},
        "history": {"loss": [1.0, 0.5, 0.3]}, "baseline": {"majority_accuracy": 0.66},
        "artifacts": {"model": "k/model.json"}, "model": {"objective": "classification", "labels": ["no", "yes"]},
    }  # fmt: skip
    await container.job_events.handle(Event(RESULT, result).envelope())
    await container.job_events.handle(Event(RESULT, result).envelope())  # duplicate: one model only
    late = Event(JOB_STATE_CHANGE, {"job_id": job_id, "state": "running"}).envelope()
    await container.job_events.handle(late)  # cannot move a completed job back

    results = (await client.get(f"/training/results/{job_id}", headers=alice.headers)).json()
    assert results["status"] == "completed" and results["final_metrics"]["accuracy"] == 0.9
    models = (await client.get("/models", headers=alice.headers)).json()
    assert models["total"] == 1 and models["models"][0]["id"] == results["model_id"]
    assert models["models"][0]["objective"] == "classification" and models["models"][0]["task"] is None
    events = (await client.get(f"/api/jobs/{job_id}/events", headers=alice.headers)).json()["events"]
    assert [e["type"] for e in events].count("progress") == 1
    stop = await client.post(f"/training/stop/{job_id}", headers=alice.headers)
    assert stop.status_code == 409

    # Deleting the trained model takes its bound API keys and the job's pointer with it.
    model_id = results["model_id"]
    key = await client.post("/api/apikeys", headers=alice.headers, json={"name": "k", "model_id": model_id})
    assert key.status_code == 201
    assert (await client.delete(f"/models/{model_id}", headers=alice.headers)).status_code == 204
    assert (await client.get("/api/apikeys", headers=alice.headers)).json() == []
    assert (await client.get(f"/training/results/{job_id}", headers=alice.headers)).json()["model_id"] is None


async def test_unknown_jobs_and_foreign_events_are_dropped(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    # GIVEN a queued job
    dataset_id = await _dataset(client, alice)
    started = await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))
    job_id = ObjectId(started.json()["job_id"])
    before = await container.job_repo.get(job_id)
    events_before = await container.job_event_repo.collection.count_documents({})
    # WHEN events arrive for a job that does not exist and for a training job Stratus did not start
    result = {
        "job_id": str(ObjectId()),
        "seq": 2,
        "status": "completed",
        "model": {"objective": "classification"},
    }
    await container.job_events.handle(Event(PROGRESS, {"job_id": str(ObjectId()), "seq": 1}).envelope())
    await container.job_events.handle(Event(RESULT, result).envelope())
    await container.job_events.handle(
        {"source": "aws.sagemaker", "detail-type": SAGEMAKER_STATE,
         "detail": {"TrainingJobName": "x", "TrainingJobStatus": "Failed"}}
    )  # fmt: skip
    # THEN none raises (a raise would make the event source retry forever), nothing is created, and
    # the real job is untouched
    assert await container.job_repo.collection.count_documents({}) == 1
    assert await container.model_repo.collection.count_documents({}) == 0
    assert await container.job_repo.get(job_id) == before
    assert await container.job_event_repo.collection.count_documents({}) == events_before


async def test_results_before_completion_are_409_and_stop_ends_the_run(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, seen = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    job_id = (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
        "job_id"
    ]
    assert (await client.get(f"/training/results/{job_id}", headers=alice.headers)).status_code == 409
    await service.dispatch(ObjectId(job_id))
    stop = await client.post(f"/training/stop/{job_id}", headers=alice.headers)
    assert stop.status_code == 200 and stop.json()["status"] == "stopping"
    # The backend reports the process it stopped; the events service ends the job.
    job = await container.job_repo.get(ObjectId(job_id))
    assert job is not None
    from stratus.ports.jobs import JobHandle

    await service._backend.wait(JobHandle("local", job["external_id"]))  # type: ignore[attr-defined]
    for event in seen:
        await container.job_events.handle(event.envelope())
    final = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert final["status"] == "stopped"


async def test_a_silent_worker_is_failed_by_the_sweeper(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    job_id = ObjectId(
        (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
            "job_id"
        ]
    )
    await service.dispatch(job_id)
    # GIVEN the worker has said nothing for longer than the heartbeat timeout
    await container.job_repo.collection.update_one(
        {"_id": job_id}, {"$set": {"status": "running", "updated_at": utcnow() - timedelta(hours=1)}}
    )
    # WHEN the sweeper runs THEN the job fails with a reason instead of staying `running`
    assert await container.job_events.sweep() == 1
    job = (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()
    assert job["status"] == "failed" and "stopped reporting progress" in job["error"]


async def test_job_list_paginates_with_a_cursor(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _dataset(client, alice)
    created = [
        (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
            "job_id"
        ]
        for _ in range(3)
    ]
    first = (await client.get("/api/jobs?limit=2", headers=alice.headers)).json()
    second = (
        await client.get(f"/api/jobs?limit=2&cursor={first['next_cursor']}", headers=alice.headers)
    ).json()
    assert [j["id"] for j in first["jobs"] + second["jobs"]] == list(reversed(created))
    assert second["next_cursor"] is None
    assert (await client.get("/api/jobs?status=completed", headers=alice.headers)).json()["jobs"] == []


async def test_a_result_whose_model_could_not_be_stored_is_completed_on_redelivery(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    service, _ = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    job_id = (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
        "job_id"
    ]
    await service.dispatch(ObjectId(job_id))
    result = Event(
        RESULT, {"job_id": job_id, "seq": 2, "status": "completed", "final_metrics": {"accuracy": 0.9}}
    ).envelope()
    # GIVEN the model registry is down when the result first arrives
    real = container.model_repo.register_for_job

    async def down(*_: Any, **__: Any) -> dict[str, Any]:
        raise ServiceUnavailable("Database unavailable, please retry shortly")

    monkeypatch.setattr(container.model_repo, "register_for_job", down)
    with pytest.raises(ServiceUnavailable):
        await container.job_events.handle(result)
    assert (await client.get(f"/api/jobs/{job_id}", headers=alice.headers)).json()["status"] == "starting"
    # WHEN the event is redelivered (EventBridge retries) THEN the job completes with its one model
    monkeypatch.setattr(container.model_repo, "register_for_job", real)
    await container.job_events.handle(result)
    await container.job_events.handle(result)
    done = (await client.get(f"/training/results/{job_id}", headers=alice.headers)).json()
    assert done["status"] == "completed" and done["model_id"] is not None
    assert (await client.get("/models", headers=alice.headers)).json()["total"] == 1


async def test_concurrent_dispatches_respect_the_cap(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs  # cap 1
    dataset_id = await _dataset(client, alice)
    ids = [
        ObjectId(
            (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
                "job_id"
            ]
        )
        for _ in range(4)
    ]
    await asyncio.gather(*(service.dispatch(job_id) for job_id in ids))
    statuses = [(await container.job_repo.get(job_id) or {})["status"] for job_id in ids]
    assert statuses.count("starting") <= 1
    assert statuses.count("queued") >= 3


async def test_waiting_jobs_are_not_resent_by_the_sweeper(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs  # cap 1
    dataset_id = await _dataset(client, alice)
    created = []
    for _ in range(2):
        response = await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))
        created.append(ObjectId(response.json()["job_id"]))
    first, second = created
    await service.dispatch(first)
    await service.dispatch(second)  # over the cap: waits, and says so
    waiting = await container.job_repo.get(second)
    assert waiting is not None and waiting["status"] == "queued" and waiting.get("waiting_for_slot_at")
    service.policy = JobPolicy(max_running_per_user=1, requeue_after_s=60)
    assert await service.sweep() == 0


async def test_a_stop_during_submission_reaches_the_backend(
    client: httpx.AsyncClient,
    alice: Account,
    container: Container,
    sleeper_jobs: tuple[JobService, list[Event]],
) -> None:
    service, _ = sleeper_jobs
    dataset_id = await _dataset(client, alice)
    job_id = ObjectId(
        (await client.post("/training/start", headers=alice.headers, json=_training(dataset_id))).json()[
            "job_id"
        ]
    )
    backend = service._backend  # type: ignore[attr-defined]
    submit = backend.submit

    async def slow_submit(spec: Any) -> Any:
        # WHEN the user stops the job while it is being submitted
        await service.stop(ObjectId(alice.user_id), job_id)
        return await submit(spec)

    backend.submit = slow_submit
    await service.dispatch(job_id)
    job = await container.job_repo.get(job_id)
    assert job is not None and job["status"] == "stopping"
    from stratus.ports.jobs import JobHandle

    # THEN the backend was told: the worker process ends as stopped
    final = await backend.wait(JobHandle("local", job["external_id"]))
    assert final.state == "stopped"
