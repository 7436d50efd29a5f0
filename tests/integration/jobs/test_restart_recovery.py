"""What `stratus serve` does with the jobs of its previous process when it starts (against the real
database): their workers died with that process and its queue was in its memory, so the jobs it was
running end at once with the reason, and queued jobs get their start message again."""

from __future__ import annotations

from typing import Any

import httpx
from bson import ObjectId

from stratus.capabilities.webhooks.service import DELIVER_MESSAGE
from stratus.composition import Container
from stratus.jobs.service import SERVER_RESTARTED, START_MESSAGE
from stratus.local.runtime import LocalPorts, recover_jobs
from tests.integration.api.accounts import Account


async def _job(container: Container, owner: Account, status: str, **fields: Any) -> ObjectId:
    job, _ = await container.job_repo.insert(
        {"user_id": ObjectId(owner.user_id), "kind": "training", "params": {}, "status": status, **fields}
    )
    return ObjectId(job["_id"])


async def test_a_restart_ends_the_lost_jobs_and_requeues_the_queued_ones(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    hook = await client.post(
        "/api/webhooks",
        headers=alice.headers,
        json={"url": "http://127.0.0.1:9/hook", "events": ["training.failed"]},
    )
    assert hook.status_code == 201, hook.text
    # GIVEN the jobs the previous process left, in every state
    running = await _job(container, alice, "running", backend="local", external_id="local-a-1")
    claimed = await _job(container, alice, "starting")  # claimed, never handed to the backend
    stopping = await _job(container, alice, "stopping", backend="local", external_id="local-b-1")
    queued = await _job(container, alice, "queued")
    elsewhere = await _job(container, alice, "running", backend="sagemaker", external_id="sm-1")
    finished = await _job(container, alice, "completed", backend="local", external_id="local-c-1")
    sent: list[dict[str, Any]] = []

    async def collect(body: dict[str, Any]) -> None:
        sent.append(body)

    # WHEN the new process recovers (before it consumes its queue)
    await recover_jobs(container)
    await ports.queue.start(collect)
    await ports.queue.wait_idle(limit_s=5)
    await ports.queue.stop()

    async def job(job_id: ObjectId) -> dict[str, Any]:
        response = await client.get(f"/api/jobs/{job_id}", headers=alice.headers)
        assert response.status_code == 200, response.text
        return dict(response.json())

    # THEN the lost ones failed at once with the reason (the one being stopped is stopped, as asked)
    for lost in (running, claimed):
        assert ((await job(lost))["status"], (await job(lost))["error"]) == ("failed", SERVER_RESTARTED)
    assert (await job(stopping))["status"] == "stopped"
    assert (await job(stopping))["error"] is None
    # AND the owner is told: the event log and the failure webhooks
    events = (await client.get(f"/api/jobs/{running}/events", headers=alice.headers)).json()["events"]
    assert [e["data"]["status"] for e in events] == ["failed"]
    deliveries = [m for m in sent if m["type"] == DELIVER_MESSAGE]
    assert len(deliveries) == 2
    # AND the queued job is sent again, still queued; the others are left as they were
    assert [m for m in sent if m["type"] == START_MESSAGE] == [{"type": START_MESSAGE, "job_id": str(queued)}]
    assert (await job(queued))["status"] == "queued"
    assert (await job(elsewhere))["status"] == "running"
    assert (await job(finished))["status"] == "completed"


async def test_a_restart_with_nothing_to_recover_changes_nothing(
    container: Container, alice: Account
) -> None:
    done = await _job(container, alice, "failed", backend="local", error="earlier failure")

    recovered = await container.jobs.reconcile_after_restart()

    assert (recovered.ended, recovered.requeued) == ([], 0)
    after = await container.job_repo.get(done)
    assert after is not None and after["error"] == "earlier failure"
