"""The API Gateway WebSocket Lambda's handler, fed the events API Gateway sends for $connect, $default and
$disconnect; replies go out through the Management API (botocore-stubbed) or the local hub."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import boto3
import pytest
from botocore.stub import Stubber

from stratus.adapters.aws.apigw_notifier import ApiGatewayNotifier
from stratus.composition import Container
from stratus.db.repositories.connections import ConnectionRepository
from stratus.handlers.websocket import build_websocket_handler
from stratus.local.runtime import LocalPorts
from stratus.services.live import LiveUpdates
from tests.conftest import fake_aws_credentials
from tests.integration.live.conftest import User, model_bound_credentials
from tests.unit.adapters.test_local_ws_hub import Socket

T = TypeVar("T")
Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
CONNECTION = "L0SM9cOFvHcCIhw="
ENDPOINT = "https://abc123.execute-api.us-east-1.amazonaws.com/prod"


def _context(route: str, event_type: str, connection_id: str = CONNECTION) -> dict[str, Any]:
    return {
        "routeKey": route,
        "eventType": event_type,
        "extendedRequestId": "L0SM9F9lIAMFvzA=",
        "requestTime": "10/Nov/2025:12:00:00 +0000",
        "messageDirection": "IN",
        "stage": "prod",
        "connectedAt": 1762776000000,
        "requestTimeEpoch": 1762776000123,
        "identity": {"sourceIp": "203.0.113.7", "userAgent": "Mozilla/5.0"},
        "requestId": "L0SM9F9lIAMFvzA=",
        "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
        "connectionId": connection_id,
        "apiId": "abc123",
    }


def connect_event(*, token: str | None = None, protocol: str | None = None) -> dict[str, Any]:
    headers = {
        "Host": "abc123.execute-api.us-east-1.amazonaws.com",
        "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "X-Forwarded-For": "203.0.113.7",
        "X-Forwarded-Port": "443",
        "X-Forwarded-Proto": "https",
    }
    if protocol is not None:
        headers["Sec-WebSocket-Protocol"] = protocol
    query = {"token": token} if token is not None else None
    return {
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "requestContext": _context("$connect", "CONNECT"),
        "isBase64Encoded": False,
    }


def message_event(body: str, connection_id: str = CONNECTION) -> dict[str, Any]:
    context = _context("$default", "MESSAGE", connection_id) | {"messageId": "L0SM9cOFvHcCIhw="}
    return {"requestContext": context, "body": body, "isBase64Encoded": False}


def disconnect_event() -> dict[str, Any]:
    context = _context("$disconnect", "DISCONNECT") | {
        "disconnectStatusCode": 1001,
        "disconnectReason": "Going away",
    }
    return {"headers": {"Host": "abc123.execute-api.us-east-1.amazonaws.com"}, "requestContext": context}


async def invoke(handler: Handler, event: dict[str, Any]) -> dict[str, Any]:
    """As Lambda does: the handler runs in a thread, its coroutines on the process's one loop."""
    return await asyncio.to_thread(handler, event, None)


@pytest.fixture
async def run() -> Callable[[Coroutine[Any, Any, Any]], Any]:
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(10)

    return run


@pytest.fixture
def handler(container: Container, live: LiveUpdates, run: Any) -> Handler:
    return build_websocket_handler(container.auth, live, run)


async def test_connect_with_a_query_token(
    handler: Handler, connections: ConnectionRepository, alice: User
) -> None:
    assert await invoke(handler, connect_event(token=alice.token)) == {"statusCode": 200}
    assert await connections.user_of(CONNECTION) == alice.user_id


async def test_connect_with_the_bearer_subprotocol_echoes_it(
    handler: Handler, connections: ConnectionRepository, alice: User
) -> None:
    response = await invoke(handler, connect_event(protocol=f"bearer, {alice.token}"))
    assert response == {"statusCode": 200, "headers": {"Sec-WebSocket-Protocol": "bearer"}}
    assert await connections.user_of(CONNECTION) == alice.user_id


@pytest.mark.parametrize(
    "event",
    [
        connect_event(),
        connect_event(token="not-a-token"),
        connect_event(token="sk-" + "0" * 48),
        connect_event(protocol="bearer"),
        connect_event(protocol="graphql-ws, whatever"),
    ],
    ids=["none", "bad-jwt", "bad-key", "bearer-alone", "other-protocol"],
)
async def test_connect_without_valid_credentials_is_refused(
    handler: Handler, connections: ConnectionRepository, event: dict[str, Any]
) -> None:
    assert await invoke(handler, event) == {"statusCode": 401}
    assert await connections.user_of(CONNECTION) is None


async def test_subscribe_replies_through_the_management_api(
    container: Container,
    connections: ConnectionRepository,
    run: Any,
    alice: User,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN the AWS notifier (post_to_connection, stubbed) and Alice connected
    fake_aws_credentials(monkeypatch)
    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1", endpoint_url=ENDPOINT)
    stubber = Stubber(client)

    async def owns(user_id: Any, job_id: str) -> bool:
        return user_id == alice.user_id and job_id == alice.job_id

    live = LiveUpdates(connections, ApiGatewayNotifier(client), job_owner=owns)
    handler = build_websocket_handler(container.auth, live, run)
    await invoke(handler, connect_event(token=alice.token))
    subscribed = {"type": "subscribed", "data": {"job_id": alice.job_id}}
    stubber.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": CONNECTION, "Data": json.dumps(subscribed, separators=(",", ":")).encode()},
    )
    stubber.add_response(
        "post_to_connection",
        {},
        {"ConnectionId": CONNECTION, "Data": b'{"type":"progress","data":{"epoch":1}}'},
    )
    stubber.add_client_error("post_to_connection", "GoneException", http_status_code=410)
    with stubber:
        # WHEN she subscribes to her job
        body = json.dumps({"action": "subscribe", "job_id": alice.job_id})
        assert await invoke(handler, message_event(body)) == {"statusCode": 200}
        # THEN the reply was posted to her connection, and pushes reach it
        assert await live.push(alice.job_id, {"type": "progress", "data": {"epoch": 1}}) == 1
        # AND once API Gateway says the connection is gone, it is forgotten
        assert await live.push(alice.job_id, {"type": "progress", "data": {"epoch": 2}}) == 0
    stubber.assert_no_pending_responses()
    assert await connections.user_of(CONNECTION) is None


async def test_messages_get_replies_on_the_connection(
    handler: Handler, ports: LocalPorts, alice: User, bob: User
) -> None:
    sock = Socket()
    ports.notifier.register(CONNECTION, sock.send_json)
    await invoke(handler, connect_event(token=alice.token))
    for body in (
        json.dumps({"action": "ping"}),
        json.dumps({"action": "subscribe", "job_id": bob.job_id}),
        json.dumps({"action": "unsubscribe", "job_id": alice.job_id}),
        "{not json",
    ):
        assert await invoke(handler, message_event(body)) == {"statusCode": 200}
    assert sock.sent == [
        {"type": "pong", "data": {}},
        {"type": "error", "data": {"message": "Job not found"}},
        {"type": "unsubscribed", "data": {"job_id": alice.job_id}},
        {"type": "error", "data": {"message": "messages must be JSON"}},
    ]


async def test_a_message_from_an_unknown_connection_is_told_to_reconnect(
    handler: Handler, ports: LocalPorts
) -> None:
    sock = Socket()
    ports.notifier.register("stranger", sock.send_json)
    await invoke(handler, message_event(json.dumps({"action": "ping"}), connection_id="stranger"))
    assert sock.sent == [{"type": "error", "data": {"message": "Connection not registered; reconnect"}}]


async def test_disconnect_forgets_the_connection(
    handler: Handler, connections: ConnectionRepository, alice: User
) -> None:
    await invoke(handler, connect_event(token=alice.token))
    assert await invoke(handler, disconnect_event()) == {"statusCode": 200}
    assert await connections.user_of(CONNECTION) is None
    assert await invoke(handler, {"requestContext": {"routeKey": "$default"}}) == {"statusCode": 400}


async def test_connect_with_a_model_bound_key_is_forbidden(
    handler: Handler, container: Container, connections: ConnectionRepository, alice: User
) -> None:
    # A model-bound key may call its model and nothing else: not follow the user's jobs.
    for credential in await model_bound_credentials(container, alice):
        for event in (connect_event(token=credential), connect_event(protocol=f"bearer, {credential}")):
            assert await invoke(handler, event) == {"statusCode": 403}
            assert await connections.user_of(CONNECTION) is None
