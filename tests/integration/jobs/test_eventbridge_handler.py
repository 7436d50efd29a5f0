"""The job-events Lambda's handler with SageMaker's real event shape, against the real database."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.handlers.eventbridge import build_eventbridge_handler
from stratus.schemas.common import utcnow

SAGEMAKER_EVENT = {
    "version": "0",
    "id": "7ee5f1c5-0b3c-4e5a-9c1e-4d3c2a1b0f9e",
    "detail-type": "SageMaker Training Job State Change",
    "source": "aws.sagemaker",
    "account": "123456789012",
    "time": "2026-11-23T10:00:00Z",
    "region": "us-east-1",
    "resources": ["arn:aws:sagemaker:us-east-1:123456789012:training-job/stratus-abc"],
    "detail": {
        "TrainingJobName": "stratus-abc",
        "TrainingJobStatus": "Failed",
        "SecondaryStatus": "Failed",
        "FailureReason": "AlgorithmError: CUDA out of memory",
    },
}


async def test_a_sagemaker_failure_fails_the_job(container: Container) -> None:
    # GIVEN a running job started on SageMaker
    job, _ = await container.job_repo.insert(
        {"user_id": ObjectId(), "kind": "training", "status": "running", "backend": "sagemaker",
         "external_id": "stratus-abc", "started_at": utcnow()}
    )  # fmt: skip
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result()

    handler = build_eventbridge_handler(container.job_events.handle, run)
    # WHEN EventBridge delivers the state change
    result = await asyncio.to_thread(handler, SAGEMAKER_EVENT, None)
    # THEN the job fails with SageMaker's reason
    assert result == {"handled": SAGEMAKER_EVENT["id"]}
    stored = await container.job_repo.get(job["_id"])
    assert stored is not None and stored["status"] == "failed"
    assert stored["error"] == "AlgorithmError: CUDA out of memory"
    # AND a repeat of the event changes nothing
    await asyncio.to_thread(handler, SAGEMAKER_EVENT, None)
    again = await container.job_repo.get(job["_id"])
    assert again is not None and again["updated_at"] == stored["updated_at"]


async def test_a_non_eventbridge_payload_is_an_error() -> None:
    handler = build_eventbridge_handler(lambda _: asyncio.sleep(0), lambda coro: coro.close())
    with pytest.raises(ValueError, match="detail-type"):
        handler({"Records": []}, None)


async def test_batch_state_changes_move_the_job(container: Container) -> None:
    job, _ = await container.job_repo.insert(
        {"user_id": ObjectId(), "kind": "training", "status": "starting", "backend": "batch",
         "external_id": "4c1f2a9e-batch-job"}
    )  # fmt: skip

    def batch_event(status: str, reason: str | None = None) -> dict[str, Any]:
        detail = {"jobId": "4c1f2a9e-batch-job", "jobName": "stratus-x", "status": status}
        if reason:
            detail["statusReason"] = reason
        return {"version": "0", "id": status, "source": "aws.batch", "detail-type": "Batch Job State Change",
                "time": "2026-11-23T10:00:00Z", "detail": detail}  # fmt: skip

    await container.job_events.handle(batch_event("RUNNABLE"))  # not a state we act on
    await container.job_events.handle(batch_event("RUNNING"))
    running = await container.job_repo.get(job["_id"])
    assert running is not None and running["status"] == "running"
    await container.job_events.handle(batch_event("FAILED", "Essential container in task exited"))
    failed = await container.job_repo.get(job["_id"])
    assert failed is not None and failed["status"] == "failed"
    assert failed["error"] == "Essential container in task exited"
