"""EventBridgeBus: events published through moto's EventBridge reach an SQS target via a rule, in
EventBridge's envelope; partial failures are retried once (botocore Stubber)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from stratus.adapters.aws import eventbridge
from stratus.adapters.aws.eventbridge import EventBridgeBus
from stratus.errors import DependencyFailed, InvalidInput, ServiceUnavailable
from stratus.ports.events import Event

REGION = "us-east-1"
BUS = "stratus-test"


@pytest.fixture
def routed() -> tuple[Any, Any, str]:
    """A custom bus whose rule sends Stratus job events (and nothing else) to an SQS queue."""
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name=BUS)
    url = sqs.create_queue(QueueName="job-events")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(
        Name="job-state",
        EventBusName=BUS,
        EventPattern=json.dumps({"source": ["stratus.jobs"], "detail-type": ["Stratus Job State Change"]}),
    )
    events.put_targets(Rule="job-state", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": arn}])
    return events, sqs, url


def drain(sqs: Any, url: str) -> list[dict[str, Any]]:
    bodies: list[dict[str, Any]] = []
    while True:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


@pytest.mark.usefixtures("aws")
async def test_published_events_reach_the_rule_target_in_the_envelope(routed: tuple[Any, Any, str]) -> None:
    events, sqs, url = routed
    when = datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC)
    state = Event("Stratus Job State Change", {"job_id": "j1", "state": "running", "n": 2}, time=when)
    other = Event("Stratus Job Progress", {"job_id": "j1", "progress": 0.5})

    await EventBridgeBus(events, BUS).publish([state, other])

    [envelope] = drain(sqs, url)
    assert envelope["source"] == "stratus.jobs"
    assert envelope["detail-type"] == "Stratus Job State Change"
    assert envelope["detail"] == {"job_id": "j1", "state": "running", "n": 2}
    assert envelope["time"] == "2025-03-04T05:06:07Z"
    received = Event.from_envelope(envelope)
    assert (received.detail_type, received.detail, received.time) == (state.detail_type, state.detail, when)


@pytest.mark.usefixtures("aws")
async def test_more_than_ten_events_go_out_in_several_calls(routed: tuple[Any, Any, str]) -> None:
    events, sqs, url = routed
    batch = [Event("Stratus Job State Change", {"job_id": f"j{i}", "state": "pending"}) for i in range(23)]

    await EventBridgeBus(events, BUS).publish(batch)

    assert sorted(e["detail"]["job_id"] for e in drain(sqs, url)) == sorted(f"j{i}" for i in range(23))


@pytest.mark.usefixtures("aws")
async def test_publishing_nothing_calls_nothing() -> None:
    client = boto3.client("events", region_name=REGION)
    with Stubber(client):  # any call would fail: no responses queued
        await EventBridgeBus(client, BUS).publish([])


def test_batches_respect_the_request_size_limit() -> None:
    bus = EventBridgeBus(None, BUS)
    big = [bus._entry(Event("Big", {"blob": "x" * 100_000})) for _ in range(5)]
    assert [len(b) for b in eventbridge._batches(big)] == [2, 2, 1]
    with pytest.raises(InvalidInput):
        list(eventbridge._batches([bus._entry(Event("Huge", {"blob": "x" * 300_000}))]))


@pytest.fixture
def stubbed(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Stubber]:
    monkeypatch.setattr(eventbridge, "RETRY_DELAY_S", 0)
    client = boto3.client("events", region_name=REGION)
    return client, Stubber(client)


def entry(detail_type: str) -> dict[str, Any]:
    return {
        "Source": "stratus.jobs",
        "DetailType": detail_type,
        "Detail": ANY,
        "Time": ANY,
        "EventBusName": BUS,
    }


async def test_failed_entries_are_retried_once(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "put_events",
        {"FailedEntryCount": 1, "Entries": [{"EventId": "1"}, {"ErrorCode": "ThrottlingException"}]},
        {"Entries": [entry("A"), entry("B")]},
    )
    # The retry carries only the entry that failed.
    stubber.add_response(
        "put_events", {"FailedEntryCount": 0, "Entries": [{"EventId": "2"}]}, {"Entries": [entry("B")]}
    )
    with stubber:
        await EventBridgeBus(client, BUS).publish([Event("A", {}), Event("B", {})])
    stubber.assert_no_pending_responses()


async def test_entries_failing_twice_raise_service_unavailable(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    failed = {"FailedEntryCount": 1, "Entries": [{"ErrorCode": "InternalFailure", "ErrorMessage": "boom"}]}
    stubber.add_response("put_events", failed, {"Entries": [entry("A")]})
    stubber.add_response("put_events", failed, {"Entries": [entry("A")]})
    with stubber, pytest.raises(ServiceUnavailable) as caught:
        await EventBridgeBus(client, BUS).publish([Event("A", {})])
    assert caught.value.details == {"aws_errors": ["InternalFailure"]}


async def test_call_errors_are_translated(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("put_events", "ThrottlingException", http_status_code=400)
    stubber.add_client_error("put_events", "AccessDeniedException", http_status_code=400)
    bus = EventBridgeBus(client, BUS)
    with stubber:
        with pytest.raises(ServiceUnavailable):
            await bus.publish([Event("A", {})])
        with pytest.raises(DependencyFailed):
            await bus.publish([Event("A", {})])
