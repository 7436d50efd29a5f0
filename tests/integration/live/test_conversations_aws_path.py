"""A chat's reply on the AWS path: the WebSocket Lambda subscribes a connection to the chat on $connect
(`?follow={chat_id}`), the dispatcher Lambda's SQS handler takes the chat.reply message, and the reply's
pieces and the stored message reach the connection through post_to_connection (moto's Management API)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from typing import Any, TypeVar

import boto3
from bson import ObjectId

from stratus.adapters.aws.apigw_notifier import ApiGatewayNotifier
from stratus.capabilities.chats.schemas import ChatCreate, MessageCreate
from stratus.composition import Container
from stratus.handlers.sqs_dispatch import build_sqs_handler
from stratus.handlers.websocket import build_websocket_handler
from stratus.services.live import LiveUpdates
from tests.integration.live.conftest import User
from tests.integration.live.test_websocket_lambda import CONNECTION, ENDPOINT, connect_event

T = TypeVar("T")


class TwoPieces:
    async def stream(
        self,
        user_id: ObjectId,
        model: str | None,
        messages: Sequence[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
    ) -> AsyncIterator[str]:
        yield "Hello "
        yield "there."


def _decode_all(data: bytes) -> list[dict[str, Any]]:
    """moto appends every posted payload to one buffer: split it back into the JSON messages."""
    text, decoder, out, at = data.decode(), json.JSONDecoder(), [], 0
    while at < len(text):
        message, at = decoder.raw_decode(text, at)
        out.append(message)
    return out


async def test_the_dispatcher_pushes_a_reply_to_the_chats_api_gateway_connection(
    container: Container, alice: User, mocked_aws: None
) -> None:
    # GIVEN the AWS notifier and a chat Alice follows through the WebSocket Lambda
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(30)

    client = boto3.client("apigatewaymanagementapi", region_name="us-east-1", endpoint_url=ENDPOINT)
    live = LiveUpdates(
        container.connection_repo, ApiGatewayNotifier(client), job_owner=container._owns_job_or_task
    )
    container.__dict__["live"] = live  # before the chats service is built, so it pushes through AWS
    container.chats.model = TwoPieces()
    chat = await container.chats.create(alice.user_id, ChatCreate(title="t"))
    event = connect_event(token=alice.token)
    event["queryStringParameters"] = {"token": alice.token, "follow": str(chat["_id"])}
    ws = build_websocket_handler(container.auth, live, run)
    assert (await asyncio.to_thread(ws, event, None))["statusCode"] == 200
    question = await container.chats.post(
        alice.user_id, MessageCreate(chat_id=str(chat["_id"]), role="user", content="Hi")
    )
    # WHEN the dispatcher Lambda receives the chat.reply message
    body = {"type": "chat.reply", "chat_id": str(chat["_id"]), "message_id": str(question["_id"])}
    record = {
        "messageId": "m0",
        "receiptHandle": "r0",
        "body": json.dumps(body),
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {},
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
        "awsRegion": "us-east-1",
    }
    dispatch: Callable[[dict[str, Any], Any], dict[str, Any]] = build_sqs_handler(container.messages, run)
    result = await asyncio.to_thread(dispatch, {"Records": [record]}, None)
    # THEN nothing failed, and the connection got the pieces, then the stored reply
    assert result == {"batchItemFailures": []}
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends["123456789012"]["us-east-1"]
    # moto keys the connection by its URL-encoded id.
    pushed = _decode_all(backend.connections[CONNECTION.replace("=", "%3D")].data)
    assert [m["type"] for m in pushed] == ["chat_token", "chat_token", "chat_message"]
    assert "".join(m["data"]["token"] for m in pushed[:2]) == "Hello there."
    assert pushed[2]["data"]["content"] == "Hello there." and pushed[2]["data"]["reply_to"] == str(
        question["_id"]
    )
