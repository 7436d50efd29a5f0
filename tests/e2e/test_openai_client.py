"""The official `openai` client against a live `stratus serve` (/v1: chat, streaming, models, embeddings,
errors), and seed 004's chat over the real WebSocket, tokens arriving before the final response."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import openai
import pytest
from websockets.sync.client import connect

from tests.e2e.server import ServeProcess

pytestmark = pytest.mark.slow

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="module")
def token(stratus_server: ServeProcess) -> str:
    response = httpx.post(
        f"{stratus_server.base_url}/api/auth/register",
        json={"email": "openai@example.com", "password": "securepassword123", "name": "Open AI"},
        timeout=30,
    )
    assert response.status_code == 201, response.text
    return str(response.json()["access_token"])


@pytest.fixture(scope="module")
def client(stratus_server: ServeProcess, token: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(
        base_url=f"{stratus_server.base_url}/v1", api_key=token, timeout=300, max_retries=0
    ) as c:
        yield c


def test_chat_completion(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4",
        messages=[{"role": "user", "content": "Count from 1 to 10, separated by commas."}],
        temperature=0,
        max_tokens=30,
        stop=", 6",
    )
    assert completion.model == SMOL  # the alias resolved: the model that answered
    choice = completion.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.startswith("1, 2")
    assert ", 6" not in choice.message.content
    assert completion.usage is not None and completion.usage.completion_tokens > 0


def test_streaming_with_usage(client: openai.OpenAI) -> None:
    messages = [{"role": "user", "content": "Name three colors."}]
    whole = client.chat.completions.create(
        model=SMOL, messages=messages, temperature=0, max_completion_tokens=20
    )  # type: ignore[arg-type]
    stream = client.chat.completions.create(
        model=SMOL,
        messages=messages,  # type: ignore[arg-type]
        temperature=0,
        max_completion_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    pieces, finish, usage = [], None, None
    for chunk in stream:
        if chunk.choices:
            pieces.append(chunk.choices[0].delta.content or "")
            finish = chunk.choices[0].finish_reason or finish
        if chunk.usage is not None:
            usage = chunk.usage
    assert len([p for p in pieces if p]) > 1  # token by token, not one block
    assert "".join(pieces) == whole.choices[0].message.content
    assert finish == whole.choices[0].finish_reason
    assert usage is not None and usage.total_tokens == whole.usage.total_tokens  # type: ignore[union-attr]


def test_models_and_embeddings(client: openai.OpenAI) -> None:
    ids = {m.id for m in client.models.list()}
    assert {"gpt-4", "gpt-3.5-turbo", SMOL, "sentence-transformers/all-MiniLM-L6-v2"} <= ids
    result = client.embeddings.create(
        model="text-embedding-3-small", input=["a cat", "a kitten", "a tax form"]
    )
    vectors = [d.embedding for d in result.data]
    assert len(vectors) == 3 and len(vectors[0]) == 384

    def cos(a: list[float], b: list[float]) -> float:
        dot = sum(x * y for x, y in zip(a, b, strict=True))
        return dot / (sum(x * x for x in a) ** 0.5 * sum(y * y for y in b) ** 0.5)

    assert cos(vectors[0], vectors[1]) > cos(vectors[0], vectors[2])


def test_errors_are_openai_exceptions(client: openai.OpenAI, stratus_server: ServeProcess) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        client.chat.completions.create(model="gpt-7", messages=[{"role": "user", "content": "hi"}])
    assert "gpt-4" in missing.value.message
    with pytest.raises(openai.BadRequestError):
        client.chat.completions.create(model="gpt-4", messages=[])
    bad = openai.OpenAI(base_url=f"{stratus_server.base_url}/v1", api_key="sk-wrong", max_retries=0)
    with bad, pytest.raises(openai.AuthenticationError):
        bad.models.list()


def test_seed_004_websocket_chat(stratus_server: ServeProcess, token: str) -> None:
    url = stratus_server.base_url.replace("http", "ws") + f"/ws?token={token}"
    with connect(url) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "connected"
        ws.send(json.dumps({"type": "chat", "data": {"message": "Name three colors.", "model": "gpt-4",
                                                      "temperature": 0, "max_tokens": 20}}))  # fmt: skip
        tokens = []
        while True:
            message = json.loads(ws.recv(timeout=300))
            if message["type"] == "chat_token":
                tokens.append(message["data"]["token"])
                continue
            assert message["type"] == "chat_response", message
            break
        response = message["data"]
        assert len(tokens) > 1 and "".join(tokens) == response["message"]
        assert response["model"] == SMOL and response["id"]
        ws.send(json.dumps({"type": "chat", "data": {"message": ""}}))
        error = json.loads(ws.recv(timeout=10))
        assert error["type"] == "error" and error["data"]["field"] == "message"
    history = httpx.get(
        f"{stratus_server.base_url}/api/chat/history",
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    ).json()
    assert response["id"] in {m["id"] for m in history["messages"]}
