"""SqsQueue against moto's SQS: what lands on the queue, FIFO deduplication, and failures."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from stratus.adapters.aws.sqs import SqsQueue
from stratus.errors import DependencyFailed, InvalidInput, ServiceUnavailable

REGION = "us-east-1"

pytestmark = pytest.mark.usefixtures("aws")


@pytest.fixture
def sqs() -> Any:
    return boto3.client("sqs", region_name=REGION)


def receive(sqs: Any, url: str, n: int = 10) -> list[dict[str, Any]]:
    response = sqs.receive_message(
        QueueUrl=url, MaxNumberOfMessages=n, AttributeNames=["All"], WaitTimeSeconds=0
    )
    return list(response.get("Messages", []))


async def test_send_puts_the_json_body_on_the_queue(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="jobs")["QueueUrl"]
    queue = SqsQueue(sqs, url)

    message_id = await queue.send({"type": "process", "dataset_id": "d1", "n": 3})

    [message] = receive(sqs, url)
    assert message["MessageId"] == message_id
    assert json.loads(message["Body"]) == {"type": "process", "dataset_id": "d1", "n": 3}


async def test_delay_seconds_holds_the_message_back(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="delayed")["QueueUrl"]
    queue = SqsQueue(sqs, url)

    await queue.send({"later": True}, delay_seconds=60)
    await queue.send({"now": True})

    assert [json.loads(m["Body"]) for m in receive(sqs, url)] == [{"now": True}]


async def test_standard_queue_ignores_the_deduplication_id(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="standard")["QueueUrl"]
    queue = SqsQueue(sqs, url)

    await queue.send({"n": 1}, deduplication_id="same")
    await queue.send({"n": 2}, deduplication_id="same")

    assert len(receive(sqs, url)) == 2


async def test_fifo_queue_deduplicates_and_groups(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="jobs.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = SqsQueue(sqs, url)
    assert queue.fifo

    first = await queue.send({"dataset_id": "d1"}, deduplication_id="d1")
    await queue.send({"dataset_id": "d1", "again": True}, deduplication_id="d1")
    await queue.send({"dataset_id": "d2"}, deduplication_id="d2")

    messages = receive(sqs, url)
    assert [json.loads(m["Body"])["dataset_id"] for m in messages] == ["d1", "d2"]
    assert messages[0]["MessageId"] == first
    assert messages[0]["Attributes"]["MessageDeduplicationId"] == "d1"
    assert messages[0]["Attributes"]["MessageGroupId"] == "d1"


async def test_fifo_without_a_deduplication_id_uses_the_content(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="content.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    queue = SqsQueue(sqs, url, message_group_id="all")

    await queue.send({"x": 1})
    await queue.send({"x": 1})
    await queue.send({"x": 2})

    messages = receive(sqs, url)
    assert [json.loads(m["Body"]) for m in messages] == [{"x": 1}, {"x": 2}]
    assert {m["Attributes"]["MessageGroupId"] for m in messages} == {"all"}
    assert len(messages[0]["Attributes"]["MessageDeduplicationId"]) == 64


async def test_fifo_refuses_per_message_delays(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="nodelay.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(InvalidInput):
        await SqsQueue(sqs, url).send({"x": 1}, delay_seconds=5)


async def test_oversized_or_badly_delayed_messages_are_refused_before_sqs(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="limits")["QueueUrl"]
    queue = SqsQueue(sqs, url)
    with pytest.raises(InvalidInput):
        await queue.send({"blob": "x" * (256 * 1024)})
    with pytest.raises(InvalidInput):
        await queue.send({"x": 1}, delay_seconds=901)
    assert receive(sqs, url) == []


async def test_ping(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="alive")["QueueUrl"]
    await SqsQueue(sqs, url).ping()

    missing = url.rsplit("/", 1)[0] + "/missing"
    with pytest.raises(ServiceUnavailable):
        await SqsQueue(sqs, missing).ping()


async def test_sending_to_a_missing_queue_is_a_dependency_failure(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="present")["QueueUrl"]
    missing = url.rsplit("/", 1)[0] + "/missing"
    with pytest.raises(DependencyFailed) as caught:
        await SqsQueue(sqs, missing).send({"x": 1})
    assert caught.value.__cause__ is not None
