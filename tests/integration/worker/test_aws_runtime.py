"""The worker with STRATUS_RUNTIME=aws, against moto: the dataset comes from S3, artifacts go to S3 and
events go through EventBridge (routed to SQS here, so the test can read what the API would receive)."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from stratus_worker.__main__ import main
from tests.unit.worker.synthetic import classification_csv

REGION, BUCKET, BUS = "us-east-1", "stratus-worker-test", "stratus-test"


@pytest.fixture
def aws(mocked_aws: None) -> Iterator[None]:
    previous = signal.getsignal(signal.SIGTERM)  # main() installs the worker's handler
    yield
    signal.signal(signal.SIGTERM, previous)


def routed_queue() -> tuple[Any, str]:
    events, sqs = boto3.client("events", region_name=REGION), boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="jobs", EventBusName=BUS, EventPattern=json.dumps({"source": ["stratus.jobs"]}))
    events.put_targets(Rule="jobs", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    return sqs, url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while messages := sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", []):
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    return bodies


@pytest.mark.usefixtures("aws")
def test_a_job_in_aws_uses_s3_and_eventbridge(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    s3 = boto3.client("s3", region_name=REGION)
    s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key="datasets/clf.csv", Body=classification_csv(rows=200))
    sqs, url = routed_queue()
    params = {"dataset_key": "datasets/clf.csv", "target": "label", "hyperparameters": {"epochs": 2}}
    environ = {
        "STRATUS_RUNTIME": "aws",
        "STRATUS_ENV": "production",  # the API's secret checks must not stop the worker
        "STRATUS_ARTIFACTS_BUCKET": BUCKET,
        "STRATUS_EVENT_BUS_NAME": BUS,
        "STRATUS_JOB_ID": "job-aws",
        "STRATUS_JOB_KIND": "training",
        "STRATUS_JOB_PARAMS": json.dumps(params),
        "STRATUS_OUTPUT_PREFIX": "/models/job-aws/",
        "STRATUS_JOB_WORKDIR": str(tmp_path),
    }
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    assert main(environ) == 0
    received = sorted(drain(sqs, url), key=lambda e: e["detail"]["seq"])
    assert [e["detail"]["seq"] for e in received] == list(range(1, len(received) + 1))
    assert received[-1]["detail-type"] == "Stratus Job Result"
    result = received[-1]["detail"]
    assert result["status"] == "completed"
    assert result["artifacts"]["model"] == "models/job-aws/model.json"
    stored = {o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix="models/")["Contents"]}
    assert stored == {
        "models/job-aws/model.json",
        "models/job-aws/checkpoint.pt",
        "models/job-aws/metrics.json",
    }
    assert not (tmp_path / "events.jsonl").exists()
