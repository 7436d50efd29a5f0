"""The chat API's shapes and errors with a scripted worker stream (no model): dropped history reported,
an error after the stream began, quota and validation errors in OpenAI's shape on /v1 only."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from stratus.capabilities.chat.service import ChatPolicy, ChatService
from stratus.composition import Container
from stratus.ports.inference import InferenceRequest
from stratus.services.quota import QuotaService
from tests.integration.api.accounts import Account

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"
START = {"type": "start", "model": SMOL, "prompt_tokens": 900, "dropped_messages": 3}
DONE = {"type": "done", "text": "Hi there", "finish_reason": "length", "dropped_messages": 3,
        "usage": {"prompt_tokens": 900, "completion_tokens": 2, "total_tokens": 902}}  # fmt: skip


class Scripted:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events
        self.requests: list[InferenceRequest] = []

    async def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        self.requests.append(request)
        for event in self.events:
            yield event


def _use(container: Container, events: list[dict[str, Any]], quota: int | None = None) -> Scripted:
    streamer = Scripted(events)
    quotas = QuotaService(container.users, {"free": quota}) if quota is not None else container.quota
    container.__dict__["chat"] = ChatService(
        container.tasks, streamer, quotas, container.chat_history_repo, models=container.model_repo,
        policy=ChatPolicy(aliases={"gpt-4": SMOL}),
    )  # fmt: skip
    return streamer


async def test_dropped_history_and_length_are_reported(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    streamer = _use(
        container, [START, {"type": "delta", "text": "Hi"}, {"type": "delta", "text": " there"}, DONE]
    )
    messages = [
        {"role": "developer", "content": "Be kind."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    body = {"model": "gpt-4", "messages": messages, "max_tokens": 2, "stop": "\n", "frequency_penalty": 0.5}
    response = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["stratus"] == {"requested_model": "gpt-4", "dropped_messages": 3}
    assert done["choices"][0]["finish_reason"] == "length" and done["usage"]["total_tokens"] == 902
    (request,) = streamer.requests
    assert request.task == "chat" and request.model == SMOL
    assert request.inputs[0]["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hello"},
    ]
    assert request.inputs[0]["stop"] == ["\n"] and request.inputs[0]["max_tokens"] == 2
    seed = await client.post("/api/chat", headers=alice.headers, json={"message": "Hello", "model": "gpt-4"})
    assert seed.json()["dropped_messages"] == 3 and seed.json()["finish_reason"] == "length"


async def test_an_error_after_the_stream_began_ends_it_in_openai_shape(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    failure = {"type": "error", "status": 503, "error": "model_unavailable", "message": "worker restarting"}
    _use(container, [START, {"type": "delta", "text": "Hi"}, failure])
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}], "stream": True}
    response = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 200
    events = [b[len("data: ") :] for b in response.text.split("\n\n") if b.startswith("data: ")]
    assert events[-1] == "[DONE]"
    error = json.loads(events[-2])["error"]
    assert error["message"] == "worker restarting" and error["type"] == "server_error"
    assert json.loads(events[1])["choices"][0]["delta"] == {"content": "Hi"}


async def test_refused_before_the_stream_began_is_a_plain_error(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    _use(
        container,
        [{"type": "error", "status": 422, "error": "wrong_task", "message": "Model 'x' does not do chat"}],
    )
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}], "stream": True}
    response = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 400
    assert response.json()["error"]["message"] == "Model 'x' does not do chat"


async def test_a_spent_quota_is_openai_insufficient_quota(
    client: httpx.AsyncClient, container: Container, alice: Account
) -> None:
    _use(container, [START, DONE], quota=1)
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "Hello"}]}
    assert (await client.post("/v1/chat/completions", headers=alice.headers, json=body)).status_code == 200
    spent = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert spent.status_code == 429
    assert spent.json()["error"]["code"] == "insufficient_quota"
    # The seed route keeps the API's own error shape.
    seed = await client.post("/api/chat", headers=alice.headers, json={"message": "Hello"})
    assert seed.status_code == 402 and "error" in seed.json() and "detail" in seed.json()


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {
                "model": "gpt-4",
                "messages": [{"role": "user", "content": "hi"}],
                "stop": ["a", "b", "c", "d", "e"],
            },
            "stop",
        ),
        ({"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "n": 2}, "n"),
        (
            {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}], "temperature": 3},
            "temperature",
        ),
        ({"model": "gpt-4", "messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"messages": [{"role": "user", "content": "hi"}]}, "model"),
    ],
)
async def test_invalid_parameters_are_400_naming_them(
    client: httpx.AsyncClient, container: Container, alice: Account, body: dict[str, Any], param: str
) -> None:
    _use(container, [START, DONE])
    response = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error" and error["param"] == param


async def test_bad_json_and_unknown_embedding_models(client: httpx.AsyncClient, alice: Account) -> None:
    bad = await client.post(
        "/v1/chat/completions", headers={**alice.headers, "Content-Type": "application/json"}, content=b"{"
    )
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_json"
    missing = await client.get("/v1/models/gpt-7", headers=alice.headers)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert (await client.get("/v1/models/gpt-4", headers=alice.headers)).json()["id"] == "gpt-4"
