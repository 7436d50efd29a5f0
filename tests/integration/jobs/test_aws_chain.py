"""The job chain on the AWS adapters under moto: API -> SQS -> dispatcher Lambda handler -> SageMaker
CreateTrainingJob; SageMaker's state change and the worker's result -> EventBridge rule -> SQS -> the
job-events Lambda handler -> job document and model registry."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.adapters.aws import clients
from stratus.adapters.aws.eventbridge import EventBridgeBus
from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sagemaker import SageMakerBackend
from stratus.adapters.aws.sagemaker_async import SageMakerAsyncInference
from stratus.adapters.aws.sqs import SqsQueue
from stratus.adapters.local.ws_hub import LocalWebSocketHub
from stratus.api.app import create_app
from stratus.composition import Container, Ports, build_container
from stratus.handlers.eventbridge import build_eventbridge_handler
from stratus.handlers.sqs_dispatch import build_sqs_handler
from stratus.jobs.events import RESULT, SAGEMAKER_STATE
from stratus.ports.events import Event
from stratus.settings import Settings
from tests.integration.api.accounts import register

BUCKET = "stratus-artifacts"
ROLE = "arn:aws:iam::123456789012:role/stratus-sagemaker"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stratus-worker:1"
CSV = b"x1,x2,label\n" + b"".join(f"{i % 5},{i % 3},{'a' if i % 2 else 'b'}\n".encode() for i in range(40))


@pytest.fixture
def aws(mocked_aws: None) -> dict[str, Any]:
    """The mocked account's resources, as the template would create them."""
    settings = Settings()
    sqs, events, s3, sagemaker = (clients.sqs(settings), clients.events(settings), clients.s3(settings),
                                  clients.sagemaker(settings))  # fmt: skip
    s3.create_bucket(Bucket=BUCKET)
    jobs_queue = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    events_queue = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    events_arn = sqs.get_queue_attributes(QueueUrl=events_queue, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.create_event_bus(Name="stratus")
    # The template's rule for our workers' events, with an SQS target standing in for the Lambda.
    events.put_rule(
        Name="worker-events",
        EventBusName="stratus",
        EventPattern=json.dumps({"source": ["stratus.jobs"], "detail-type": [RESULT]}),
    )
    events.put_targets(Rule="worker-events", EventBusName="stratus", Targets=[{"Id": "q", "Arn": events_arn}])
    return {"sqs": sqs, "s3": s3, "sagemaker": sagemaker, "events": events,
           "jobs_queue": jobs_queue, "events_queue": events_queue}  # fmt: skip


@pytest.fixture
async def aws_app(
    settings: Settings, aws: dict[str, Any]
) -> AsyncIterator[tuple[httpx.AsyncClient, Container]]:
    storage = S3Storage(aws["s3"], BUCKET)
    ports = Ports(
        queue=SqsQueue(aws["sqs"], aws["jobs_queue"]),
        bus=EventBridgeBus(aws["events"], "stratus"),
        storage=storage,
        notifier=LocalWebSocketHub(),
        jobs=SageMakerBackend(
            aws["sagemaker"], image_uri=IMAGE, role_arn=ROLE, bucket=BUCKET, gpu_instance_type="ml.g5.xlarge"
        ),
        inference=SageMakerAsyncInference(aws["sagemaker"], storage, bucket=BUCKET, endpoint_name=""),
    )
    # The container jobs' environment comes from these settings (runtime "aws").
    aws_settings = settings.model_copy(
        update={
            "runtime": "aws",
            "job_backend": "sagemaker",
            "artifacts_bucket": BUCKET,
            "event_bus_name": "stratus",
        }
    )
    container = build_container(aws_settings, ports)
    await container.bootstrap()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(container)), base_url="http://t"
        ) as http:
            yield http, container
    finally:
        await container.database.client.drop_database(settings.mongodb_db)
        await container.close()


def _receive(sqs: Any, url: str) -> list[dict[str, Any]]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0).get("Messages", [])


def _sqs_event(messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "Records": [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {},
             "messageAttributes": {}, "md5OfBody": m["MD5OfBody"], "eventSource": "aws:sqs",
             "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs", "awsRegion": "us-east-1"}
            for m in messages
        ]
    }  # fmt: skip


async def test_training_runs_through_the_aws_chain(
    aws_app: tuple[httpx.AsyncClient, Container], aws: dict[str, Any]
) -> None:
    http, container = aws_app
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result()

    dispatcher = build_sqs_handler(container.messages, run)
    sent: list[dict[str, Any]] = []
    aws["sagemaker"].meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
    )
    job_events = build_eventbridge_handler(container.job_events.handle, run)

    # GIVEN a dataset whose long file name makes the job params exceed SageMaker's 512-character limit
    account = await register(http)
    name = "customer-churn-" + "q" * 150 + ".csv"
    dataset = await http.post("/api/datasets/upload", headers=account.headers, files={"file": (name, CSV)})
    assert dataset.status_code == 201, dataset.text
    # WHEN training starts: a queued job and one message on SQS
    started = await http.post(
        "/training/start",
        headers=account.headers,
        json={"dataset_id": dataset.json()["_id"], "target": "label"},
    )
    assert started.status_code == 201, started.text
    job_id = started.json()["job_id"]
    messages = _receive(aws["sqs"], aws["jobs_queue"])
    assert [json.loads(m["Body"]) for m in messages] == [{"type": "job.start", "job_id": job_id}]

    # AND the dispatcher Lambda consumes it
    assert await asyncio.to_thread(dispatcher, _sqs_event(messages), None) == {"batchItemFailures": []}
    job = (await http.get(f"/api/jobs/{job_id}", headers=account.headers)).json()
    assert job["status"] == "starting" and job["backend"] == "sagemaker"
    stored = await container.job_repo.get(ObjectId(job_id))
    assert stored is not None
    external_id = stored["external_id"]
    training_job = aws["sagemaker"].describe_training_job(TrainingJobName=external_id)
    assert training_job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    # The worker can reach its storage and event bus (moto keeps no Environment: read the request).
    environment = sent[0]["Environment"]
    assert environment["STRATUS_ARTIFACTS_BUCKET"] == BUCKET
    assert environment["STRATUS_EVENT_BUS_NAME"] == "stratus"
    assert environment["STRATUS_RUNTIME"] == "aws"
    # The params went by reference: stored next to the job's outputs.
    params = json.loads(
        aws["s3"]
        .get_object(Bucket=BUCKET, Key=f"users/{account.user_id}/jobs/{job_id}/params.json")["Body"]
        .read()
    )
    assert params["target"] == "label" and params["dataset_key"].endswith(name)

    # THEN SageMaker's state change (as EventBridge delivers it) marks the job running
    state = {"version": "0", "id": "e1", "source": "aws.sagemaker", "detail-type": SAGEMAKER_STATE,
             "time": "2026-11-23T10:00:00Z", "detail": {"TrainingJobName": external_id, "TrainingJobStatus": "InProgress"}}  # fmt: skip
    await asyncio.to_thread(job_events, state, None)
    assert (await http.get(f"/api/jobs/{job_id}", headers=account.headers)).json()["status"] == "running"

    # AND the worker's result, published on the bus and routed by the rule, completes it
    result = {"job_id": job_id, "seq": 9, "status": "completed", "final_metrics": {"accuracy": 0.8},
              "artifacts": {"model": f"users/{account.user_id}/jobs/{job_id}/model.json"},
              "model": {"objective": "classification", "labels": ["a", "b"]}}  # fmt: skip
    await EventBridgeBus(aws["events"], "stratus").publish([Event(RESULT, result)])
    routed = _receive(aws["sqs"], aws["events_queue"])
    assert len(routed) == 1
    await asyncio.to_thread(job_events, json.loads(routed[0]["Body"]), None)
    done = (await http.get(f"/training/results/{job_id}", headers=account.headers)).json()
    assert done["status"] == "completed" and done["final_metrics"]["accuracy"] == 0.8
    model = (await http.get(f"/models/{done['model_id']}", headers=account.headers)).json()
    assert model["source"] == "trained"
