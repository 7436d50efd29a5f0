"""SageMaker asynchronous inference completions reaching the job-events Lambda through SNS: the waiting
task is finished and pushed to its WebSocket subscribers, with the endpoint under moto, the result
objects in S3 and the real database."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from dataclasses import replace
from typing import Any

import boto3
import pytest
from bson import ObjectId

from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sagemaker_async import SageMakerAsyncInference
from stratus.composition import Container, build_container
from stratus.handlers.eventbridge import build_eventbridge_handler
from stratus.local.runtime import LocalPorts
from stratus.settings import Settings
from tests.integration.api.accounts import Account

BUCKET = "stratus-artifacts"
# The settings' 2 s database timeout is the production figure; on a loaded test machine one slow reply
# would fail a query, and the push to subscribers swallows that (a push must never fail the task), so the
# test would see no push. Generous here: the test waits on what happened, not on how fast.
DB_TIMEOUT_MS = 60_000
RUN_LIMIT_S = 120.0


@pytest.fixture
async def aws_container(settings: Settings, ports: LocalPorts, mocked_aws: None) -> AsyncIterator[Container]:
    """The composed services with the SageMaker asynchronous inference adapter (moto) and S3."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    storage = S3Storage(s3, BUCKET)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    inference = SageMakerAsyncInference(runtime, storage, bucket=BUCKET, endpoint_name="stratus-dev-nlp")
    patient = settings.model_copy(update={"mongodb_timeout_ms": DB_TIMEOUT_MS})
    container = build_container(patient, replace(ports, storage=storage, inference=inference))
    await container.bootstrap()
    try:
        yield container
    finally:
        await container.close()


def notification(key: str, *, failed: bool = False) -> dict[str, Any]:
    """An SNS delivery of SageMaker's InferenceResult notification (its documented shape)."""
    location = {"failureLocation" if failed else "outputLocation": f"s3://{BUCKET}/{key}"}
    message = {
        "awsRegion": "us-east-1", "eventTime": "2026-11-23T10:00:01.000Z", "receivedTime": "2026-11-23T10:00:00.000Z",
        "invocationStatus": "Failed" if failed else "Completed",
        "requestParameters": {"contentType": "application/json", "endpointName": "stratus-dev-nlp",
                              "inputLocation": f"s3://{BUCKET}/inference/inputs/x.json"},
        "responseParameters": {"contentType": "application/json", **location},
        "inferenceId": "0f3c", "eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "InferenceResult",
    }  # fmt: skip
    if failed:
        message["failureReason"] = "ClientError: the container exited"
    return {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps(message)}}]}


async def test_a_completion_notification_finishes_the_task_and_pushes_it(
    aws_container: Container, alice: Account
) -> None:
    container = aws_container
    user_id = ObjectId(alice.user_id)
    # GIVEN a task that outlived its wait, and a WebSocket subscriber
    record = await container.tasks.run(
        user_id, "ner", None, [{"text": "Alice works at Google"}], {}, wait_s=0
    )
    assert record["status"] == "pending" and len(record["watch"]) == 2
    pushed: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        pushed.append(message)

    container.ports.notifier.register("conn-1", send)  # type: ignore[attr-defined]
    await container.live.connect("conn-1", user_id)
    await container.live.subscribe("conn-1", user_id, str(record["_id"]))
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, Any]) -> Any:
        # Bounded, so that a wedged loop fails the test instead of hanging it.
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=RUN_LIMIT_S)

    handler = build_eventbridge_handler(
        container.job_events.handle, run, on_inference_result=container.tasks.on_inference_result
    )
    # WHEN the endpoint writes its answer and SNS delivers the notification
    output = {"outputs": [{"entities": [{"type": "ORG", "text": "Google", "start": 15, "end": 21}]}],
              "model": "spacy/en_core_web_sm", "batch_size": 1}  # fmt: skip
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=record["watch"][0], Body=json.dumps(output).encode()
    )
    assert await asyncio.to_thread(handler, notification(record["watch"][0]), None) == {"finished_tasks": 1}
    # THEN the task is completed in the database and its subscriber was told
    stored = await container.task_repo.get_owned(user_id, record["_id"])
    assert stored is not None and stored["status"] == "completed"
    assert stored["result"]["entities"][0]["text"] == "Google"
    assert any(m["type"] == "status" and m["data"]["status"] == "completed" for m in pushed), pushed
    # AND a repeated notification changes nothing
    assert await asyncio.to_thread(handler, notification(record["watch"][0]), None) == {"finished_tasks": 0}


async def test_a_failure_notification_fails_the_task_with_the_reason(
    aws_container: Container, alice: Account
) -> None:
    container = aws_container
    user_id = ObjectId(alice.user_id)
    record = await container.tasks.run(user_id, "ner", None, [{"text": "x"}], {}, wait_s=0)
    failure_key = record["watch"][1]
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=failure_key, Body=b"Worker died: out of memory"
    )
    done = await container.tasks.on_inference_result(failure_key)
    assert done is True
    stored = await container.task_repo.get_owned(user_id, record["_id"])
    assert stored is not None and stored["status"] == "failed"
    assert "Worker died: out of memory" in stored["error"]


async def test_messages_that_are_not_inference_results_are_dropped(aws_container: Container) -> None:
    seen: list[str] = []

    async def on_result(key: str) -> bool:
        seen.append(key)
        return True

    handler = build_eventbridge_handler(
        lambda _: asyncio.sleep(0), asyncio.run, on_inference_result=on_result
    )
    other = {"Records": [{"EventSource": "aws:sns", "Sns": {"Message": json.dumps({"eventSource": "aws:s3"})}},
                         {"EventSource": "aws:sns", "Sns": {"Message": "not json"}}]}  # fmt: skip
    assert await asyncio.to_thread(handler, other, None) == {"finished_tasks": 0}
    assert seen == []
