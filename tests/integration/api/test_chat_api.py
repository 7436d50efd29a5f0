"""Seed 004's /api/chat and the OpenAI-compatible /v1 API through the app, on the real local inference
worker and SmolLM2-135M-Instruct (the model never runs in the API process)."""

from __future__ import annotations

import base64
import json
import struct
from typing import Any

import httpx
import pytest

from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and loads real models

SMOL = "HuggingFaceTB/SmolLM2-135M-Instruct"


def _sse(text: str) -> list[Any]:
    events = []
    for block in text.split("\n\n"):
        if block.startswith("data: "):
            data = block[len("data: ") :]
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


async def test_seed_004_chat_and_history(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    body = {"message": "Say hello.", "model": "gpt-4", "temperature": 0, "max_tokens": 12}
    response = await client.post("/api/chat", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    reply = response.json()
    assert reply["model"] == SMOL and reply["requested_model"] == "gpt-4"  # the alias, resolved
    assert reply["message"] and reply["finish_reason"] in ("stop", "length")
    usage = reply["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert 0 < usage["completion_tokens"] <= 12 and usage["prompt_tokens"] > 0
    assert reply["id"] and reply["created_at"].endswith("Z")

    # Greedy is deterministic.
    again = (await client.post("/api/chat", headers=alice.headers, json=body)).json()
    assert again["message"] == reply["message"]

    history = (await client.get("/api/chat/history?limit=1", headers=alice.headers)).json()
    assert history["total"] == 2 and history["limit"] == 1 and history["offset"] == 0
    (newest,) = history["messages"]
    assert newest == {"id": again["id"], "message": "Say hello.", "response": again["message"],
                      "model": SMOL, "created_at": again["created_at"]}  # fmt: skip
    assert (await client.get("/api/chat/history", headers=bob.headers)).json()["total"] == 0

    me = (await client.get("/api/auth/me", headers=alice.headers)).json()
    assert me["queries_used"] == 2  # quota counted like the NLP tasks


async def test_seed_004_bad_input(client: httpx.AsyncClient, alice: Account) -> None:
    empty = await client.post("/api/chat", headers=alice.headers, json={"message": "  "})
    assert empty.status_code == 422
    assert "message" in json.dumps(empty.json())

    unknown = await client.post("/api/chat", headers=alice.headers, json={"message": "hi", "model": "gpt-7"})
    assert unknown.status_code == 404
    available = unknown.json()["details"]["available"]
    assert "gpt-4" in available and "gpt-3.5-turbo" in available and SMOL in available

    assert (await client.post("/api/chat", json={"message": "hi"})).status_code == 401


async def test_openai_chat_completions(client: httpx.AsyncClient, alice: Account) -> None:
    body = {
        "model": "gpt-3.5-turbo",
        "messages": [
            {"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Count from 1 to 10, separated by commas."},
        ],
        "temperature": 0,
        "max_completion_tokens": 40,
        "stop": [", 5"],
    }
    response = await client.post("/v1/chat/completions", headers=alice.headers, json=body)
    assert response.status_code == 200, response.text
    done = response.json()
    assert done["object"] == "chat.completion" and done["model"] == SMOL
    (choice,) = done["choices"]
    assert choice["message"]["role"] == "assistant"
    assert ", 5" not in choice["message"]["content"] and choice["message"]["content"].startswith("1, 2")
    assert choice["finish_reason"] == "stop"

    # Streamed: the same text (greedy), chunk by chunk, then the usage chunk and [DONE].
    stream = await client.post(
        "/v1/chat/completions",
        headers=alice.headers,
        json={**body, "stream": True, "stream_options": {"include_usage": True}},
    )
    assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
    events = _sse(stream.text)
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == choice["message"]["content"]
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]]
    assert finish[-1] == "stop" and set(finish[:-1]) == {None}
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == done["usage"]
    assert all(c["id"] == chunks[0]["id"] and c["object"] == "chat.completion.chunk" for c in chunks)

    # max_tokens reached: finish_reason "length".
    short = await client.post(
        "/v1/chat/completions",
        headers=alice.headers,
        json={"model": SMOL, "messages": body["messages"][1:], "temperature": 0, "max_tokens": 3},
    )
    assert short.json()["choices"][0]["finish_reason"] == "length"
    assert short.json()["usage"]["completion_tokens"] == 3


async def test_openai_errors_models_and_embeddings(client: httpx.AsyncClient, alice: Account) -> None:
    unauthenticated = await client.post("/v1/chat/completions", json={"model": "gpt-4", "messages": []})
    assert unauthenticated.status_code == 401
    assert unauthenticated.json()["error"]["type"] == "authentication_error"

    empty = await client.post(
        "/v1/chat/completions", headers=alice.headers, json={"model": "gpt-4", "messages": []}
    )
    assert empty.status_code == 400
    assert empty.json()["error"]["param"] == "messages"
    blank = await client.post(
        "/v1/chat/completions",
        headers=alice.headers,
        json={"model": "gpt-4", "messages": [{"role": "user", "content": ""}]},
    )
    assert blank.status_code == 400 and "content" in blank.json()["error"]["message"]

    unknown = await client.post(
        "/v1/chat/completions",
        headers=alice.headers,
        json={"model": "gpt-7", "messages": [{"role": "user", "content": "hi"}]},
    )
    assert unknown.status_code == 404
    error = unknown.json()["error"]
    assert error["code"] == "model_not_found" and "gpt-4" in error["message"]

    models = (await client.get("/v1/models", headers=alice.headers)).json()
    ids = {m["id"] for m in models["data"]}
    assert {"gpt-4", "gpt-3.5-turbo", SMOL, "sentence-transformers/all-MiniLM-L6-v2"} <= ids
    assert models["object"] == "list"

    floats = await client.post(
        "/v1/embeddings",
        headers=alice.headers,
        json={"model": "text-embedding-3-small", "input": ["a cat", "a dog"]},
    )
    assert floats.status_code == 200, floats.text
    data = floats.json()
    assert data["model"] == "sentence-transformers/all-MiniLM-L6-v2"
    assert [d["index"] for d in data["data"]] == [0, 1] and len(data["data"][0]["embedding"]) == 384
    packed = await client.post(
        "/v1/embeddings",
        headers=alice.headers,
        json={
            "model": "sentence-transformers/all-MiniLM-L6-v2",
            "input": "a cat",
            "encoding_format": "base64",
        },
    )
    raw = base64.b64decode(packed.json()["data"][0]["embedding"])
    vector = struct.unpack(f"<{len(raw) // 4}f", raw)
    assert vector == pytest.approx(data["data"][0]["embedding"], abs=1e-5)
    # A size the model does not have is refused, naming the parameter, not silently ignored
    resized = await client.post(
        "/v1/embeddings",
        headers=alice.headers,
        json={"model": "text-embedding-3-small", "input": "a cat", "dimensions": 256},
    )
    assert resized.status_code == 400, resized.text
    assert resized.json()["error"]["param"] == "dimensions" and "384" in resized.json()["error"]["message"]
