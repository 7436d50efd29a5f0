"""Seed 004's WebSocket chat through the API Gateway WebSocket Lambda's handler (each token pushed to the
connection as the model produces it), and the AWS chat stream adapter (InvokeEndpointWithResponseStream,
PayloadPart boundaries that split lines) feeding ChatService."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stratus.adapters.aws.sagemaker_stream import SageMakerChatStream
from stratus.capabilities.chat.events import ChatDelta, ChatDone, ChatStart
from stratus.capabilities.chat.service import ChatPolicy, ChatService
from stratus.capabilities.identity.principal import Principal
from stratus.composition import Container
from stratus.errors import NotFound, ValidationFailed
from stratus.handlers.websocket import build_websocket_handler
from stratus.local.runtime import LocalPorts
from stratus.ports.inference import InferenceRequest
from stratus.services.live import LiveUpdates
from tests.integration.live.conftest import User
from tests.integration.live.test_websocket_lambda import CONNECTION, connect_event, invoke, message_event
from tests.unit.adapters.test_local_ws_hub import Socket

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
EVENTS = [
    {"type": "start", "model": SMOL, "prompt_tokens": 9, "dropped_messages": 2},
    {"type": "delta", "text": "Hel"},
    {"type": "delta", "text": "lo!"},
    {"type": "done", "text": "Hello!", "finish_reason": "stop", "dropped_messages": 2,
     "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}},
]  # fmt: skip


class FakeRuntime:
    """sagemaker-runtime's invoke_endpoint_with_response_stream, answering `parts` as PayloadParts."""

    def __init__(self, parts: list[bytes] | None = None, error: Exception | None = None) -> None:
        self.parts = parts or []
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def invoke_endpoint_with_response_stream(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error is not None:
            raise self.error
        return {"Body": iter([{"PayloadPart": {"Bytes": p}} for p in self.parts])}


def _split(events: list[dict[str, Any]], size: int) -> list[bytes]:
    data = b"".join(json.dumps(e).encode() + b"\n" for e in events)
    return [data[i : i + size] for i in range(0, len(data), size)]


def _service(container: Container, streamer: Any) -> ChatService:
    return ChatService(
        container.tasks,
        streamer,
        container.quota,
        container.chat_history_repo,
        models=container.model_repo,
        policy=ChatPolicy(aliases={"gpt-4": SMOL}),
    )


@pytest.fixture
def runtime() -> FakeRuntime:
    return FakeRuntime(_split(EVENTS, 7))


async def test_the_aws_stream_reassembles_lines_and_the_service_reads_it(
    container: Container, alice: User, runtime: FakeRuntime
) -> None:
    chat = _service(container, SageMakerChatStream(runtime, endpoint_name="stratus-dev-chat"))
    principal = Principal(user_id=alice.user_id, via="token")
    events = [
        e async for e in chat.stream(principal, [{"role": "user", "content": "hi"}], "gpt-4", 0, 16, "\n")
    ]
    start, *deltas, done = events
    assert isinstance(start, ChatStart) and start.model == SMOL and start.requested == "gpt-4"
    assert [d.text for d in deltas if isinstance(d, ChatDelta)] == ["Hel", "lo!"]
    assert isinstance(done, ChatDone) and done.text == "Hello!" and done.usage.total_tokens == 12
    assert done.dropped_messages == 2
    (call,) = runtime.calls
    body = json.loads(call["Body"])
    assert call["EndpointName"] == "stratus-dev-chat" and body["stream"] is True and body["task"] == "chat"
    assert body["model"] == SMOL and body["inputs"][0]["stop"] == ["\n"]


async def test_the_container_refusing_a_request_is_its_domain_error(
    container: Container, alice: User
) -> None:
    refused = ClientError(
        {
            "Error": {"Code": "ModelError", "Message": "Received client error (422)"},
            "OriginalStatusCode": 422,
            "OriginalMessage": json.dumps({"error": "wrong_task", "message": "Model 'x' does not do chat"}),
        },
        "InvokeEndpointWithResponseStream",
    )
    stream = SageMakerChatStream(FakeRuntime(error=refused), endpoint_name="e")
    request = InferenceRequest(task="chat", model="x", inputs=[{}])
    with pytest.raises(ValidationFailed, match="does not do chat"):
        [e async for e in stream.stream(request)]


async def test_unknown_models_are_404_listing_aliases_and_served_models(
    container: Container, alice: User
) -> None:
    chat = _service(container, SageMakerChatStream(FakeRuntime(), endpoint_name="e"))
    principal = Principal(user_id=alice.user_id, via="token")
    with pytest.raises(NotFound) as missing:
        await chat.complete(principal, [{"role": "user", "content": "hi"}], "gpt-7")
    assert missing.value.details["available"][:2] == ["gpt-4", SMOL]


@pytest.fixture
async def runner() -> Any:
    """As the Lambda's module does: coroutines run on the process's one loop (the test's)."""
    loop = asyncio.get_running_loop()
    return lambda coro: asyncio.run_coroutine_threadsafe(coro, loop).result(10)


class ListStreamer:
    async def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        for event in EVENTS:
            yield event


async def test_the_websocket_lambda_pushes_tokens_then_the_response(
    container: Container, live: LiveUpdates, ports: LocalPorts, runner: Any, alice: User
) -> None:
    chat = _service(container, ListStreamer())
    handler = build_websocket_handler(container.auth, live, runner, chat=lambda: chat)
    sock = Socket()
    ports.notifier.register(CONNECTION, sock.send_json)
    await invoke(handler, connect_event(token=alice.token))
    body = json.dumps({"type": "chat", "data": {"message": "Hello", "model": "gpt-4"}})
    assert await invoke(handler, message_event(body)) == {"statusCode": 200}
    tokens = [m for m in sock.sent if m["type"] == "chat_token"]
    assert [t["data"]["token"] for t in tokens] == ["Hel", "lo!"]
    response = sock.sent[-1]
    assert response["type"] == "chat_response"
    assert response["data"]["message"] == "Hello!" and response["data"]["model"] == SMOL
    assert response["data"]["id"] == tokens[0]["data"]["id"]
    principal = Principal(user_id=alice.user_id, via="token")
    history = await chat.history(principal, limit=10, offset=0)
    assert history["total"] == 1 and history["messages"][0]["response"] == "Hello!"

    await invoke(handler, message_event(json.dumps({"type": "chat", "data": {"message": ""}})))
    assert sock.sent[-1]["type"] == "error" and sock.sent[-1]["data"]["field"] == "message"
