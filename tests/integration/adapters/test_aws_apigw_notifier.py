"""ApiGatewayNotifier with botocore's Stubber (moto has no Management API data plane)."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from stratus.adapters.aws.apigw_notifier import ApiGatewayNotifier
from stratus.errors import DependencyFailed, InvalidInput, ServiceUnavailable

ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


@pytest.fixture
def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1", endpoint_url=ENDPOINT)
    return client, Stubber(client)


async def test_send_posts_the_message_as_json(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    message = {"type": "job.progress", "job_id": "j1", "progress": 0.25}
    expected = json.dumps(message, separators=(",", ":")).encode()
    stubber.add_response("post_to_connection", {}, {"ConnectionId": "conn-1=", "Data": expected})
    with stubber:
        assert await ApiGatewayNotifier(client).send("conn-1=", message) is True
    stubber.assert_no_pending_responses()


async def test_gone_connection_returns_false(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("post_to_connection", "GoneException", http_status_code=410)
    with stubber:
        assert await ApiGatewayNotifier(client).send("conn-gone", {"x": 1}) is False


async def test_other_errors_are_translated(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_client_error("post_to_connection", "LimitExceededException", http_status_code=429)
    stubber.add_client_error("post_to_connection", "ForbiddenException", http_status_code=403)
    notifier = ApiGatewayNotifier(client)
    with stubber:
        with pytest.raises(ServiceUnavailable):
            await notifier.send("c", {"x": 1})
        with pytest.raises(DependencyFailed):
            await notifier.send("c", {"x": 1})


async def test_oversized_messages_are_refused(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    with stubber, pytest.raises(InvalidInput):
        await ApiGatewayNotifier(client).send("c", {"blob": "x" * (128 * 1024)})
