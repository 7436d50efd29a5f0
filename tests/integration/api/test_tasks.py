"""NLP tasks through the API on the real local inference worker and the real shipped models."""

from __future__ import annotations

import asyncio
import math
from typing import Any

import httpx
import pytest

from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and loads real models


async def _run(
    client: httpx.AsyncClient, account: Account, path: str, body: dict[str, object]
) -> dict[str, object]:
    """POST a task and, if it outlives the wait (a first model load on a fresh machine converts
    SmolLM2's GGUF weights, ~45 s), follow it at GET /api/tasks/{id} like a client would."""
    response = await client.post(path, headers={**account.headers, "Prefer": "wait=25"}, json=body)
    assert response.status_code in (200, 202), response.text
    task = response.json()
    async with asyncio.timeout(240):
        while task["status"] == "pending":
            await asyncio.sleep(0.5)
            task = (await client.get(f"/api/tasks/{task['task_id']}", headers=account.headers)).json()
    assert task["status"] == "completed", task
    return task


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_seed_000_tasks(client: httpx.AsyncClient, alice: Account) -> None:
    # NER: seed 000's example finds the person, the organisation and the place, with spans.
    text = "John works at Google in California"
    ner: Any = await _run(client, alice, "/tasks/ner", {"text": text})
    entities = {(e["type"], e["text"]) for e in ner["result"]["entities"]}
    assert {("PERSON", "John"), ("ORG", "Google"), ("GPE", "California")} <= entities
    for e in ner["result"]["entities"]:
        assert text[e["start"] : e["end"]] == e["text"]

    # Embeddings: a paraphrase is closer than an unrelated sentence.
    texts = [
        "A man is playing a guitar.",
        "Someone plays an acoustic guitar.",
        "The stock market fell sharply today.",
    ]
    embedded: Any = await _run(client, alice, "/api/tasks/embeddings", {"text": texts, "normalize": True})
    result = embedded["result"]
    assert result["dimension"] == 384 and result["count"] == 3 and result["normalized"] is True
    a, b, c = result["embeddings"]
    assert _cosine(a, b) > _cosine(a, c) + 0.2

    # Classification: zero-shot, and it says so.
    review: Any = await _run(client, alice, "/tasks/classification", {"text": "This is a great product!"})
    assert review["result"]["label"] == "positive"
    assert review["result"]["method"].startswith("zero-shot")

    # QA: the answer indexes into the context.
    context = "BERT is a transformer model developed by Google in 2018 for language understanding."
    qa: Any = await _run(client, alice, "/tasks/qa", {"question": "Who developed BERT?", "context": context})
    answer = qa["result"]
    assert context[answer["start"] : answer["end"]] == answer["answer"]
    assert "Google" in answer["answer"] and 0 <= answer["score"] <= 1

    me = (await client.get("/api/auth/me", headers=alice.headers)).json()
    assert me["queries_used"] == 4


async def test_respond_async_returns_202_then_the_result(client: httpx.AsyncClient, alice: Account) -> None:
    headers = {**alice.headers, "Prefer": "respond-async"}
    accepted = await client.post(
        "/tasks/ner", headers=headers, json={"text": "Ada Lovelace lived in London."}
    )
    assert accepted.status_code == 202, accepted.text
    task_id = accepted.json()["task_id"]
    assert accepted.headers["Location"] == f"/api/tasks/{task_id}"
    async with asyncio.timeout(60):
        while True:
            polled = (await client.get(f"/api/tasks/{task_id}", headers=alice.headers)).json()
            if polled["status"] != "pending":
                break
            await asyncio.sleep(0.2)
    assert polled["status"] == "completed"
    assert {"PERSON", "GPE"} <= {e["type"] for e in polled["result"]["entities"]}
