"""Seed 000's POST /models/download end to end in the local runtime: the API records a job, the queue
consumer dispatches it, the real worker subprocess fetches the repository from a local server speaking
the hub's protocol, and its result registers the model."""

from __future__ import annotations

import asyncio
import json
import math
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalConsumers, LocalPorts
from stratus.settings import Settings
from tests.hub_server import (
    TINY_ENCODER,
    TINY_LM,
    TINY_NER,
    TINY_QA,
    TINY_REPO,
    TINY_T5,
    HubServer,
    closed_port,
    tiny_causal_lm,
    tiny_sentiment_repo,
    tiny_seq2seq,
)
from tests.integration.api.accounts import Account
from tests.integration.webhooks.receiver import Receiver

pytestmark = pytest.mark.slow  # the worker is a fresh interpreter


@pytest.fixture(scope="module")
def hub_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hub")
    tiny_sentiment_repo(root / TINY_REPO)
    tiny_sentiment_repo(root / TINY_ENCODER, head=None)
    tiny_sentiment_repo(root / TINY_QA, head="qa")
    tiny_sentiment_repo(root / TINY_NER, head="ner")
    tiny_causal_lm(root / TINY_LM)
    tiny_seq2seq(root / TINY_T5)
    return root


@pytest.fixture
def hub(hub_root: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[HubServer]:
    """The hub the worker subprocesses reach (they inherit the environment)."""
    with HubServer(hub_root) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        yield server


@pytest.fixture
async def consumers(container: Container, ports: LocalPorts) -> AsyncIterator[LocalConsumers]:
    running = LocalConsumers(container, ports, sweep_every_s=3600)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def _until_finished(client: httpx.AsyncClient, account: Account, download_id: str) -> dict[str, Any]:
    async with asyncio.timeout(90):
        while True:
            body: dict[str, Any] = (
                await client.get(f"/models/download/{download_id}", headers=account.headers)
            ).json()
            if body["status"] in ("completed", "failed", "stopped"):
                return body
            await asyncio.sleep(0.2)


async def test_a_download_registers_a_described_model(
    client: httpx.AsyncClient, alice: Account, hub: HubServer, consumers: LocalConsumers, settings: Settings
) -> None:
    receiver = Receiver()
    await receiver.start()
    try:
        hook = await client.post(
            "/api/webhooks", headers=alice.headers, json={"url": receiver.url, "events": ["model.downloaded"]}
        )
        assert hook.status_code == 201, hook.text

        # WHEN seed 000's request is sent
        started = await client.post(
            "/models/download",
            headers=alice.headers,
            json={"model_name": TINY_REPO, "task_type": "classification"},
        )
        # THEN a download job is queued, with where to follow it
        assert started.status_code == 202, started.text
        download = started.json()
        assert download["status"] == "queued" and download["model_name"] == TINY_REPO
        assert started.headers["location"] == f"/models/download/{download['download_id']}"
        assert download["websocket"] == f"ws://testserver/ws?follow={download['download_id']}"
        # AND asking again while it runs returns the same download
        again = await client.post(
            "/models/download",
            headers=alice.headers,
            json={"model_name": TINY_REPO, "task_type": "classification"},
        )
        assert again.json()["download_id"] == download["download_id"]

        finished = await _until_finished(client, alice, download["download_id"])
        assert finished["status"] == "completed", finished
        assert finished["files_done"] == finished["files_total"] >= 4  # config, weights, tokenizer files
        assert finished["bytes_downloaded"] == finished["total_bytes"] > 0 and finished["progress"] == 100.0
        async with asyncio.timeout(10):
            while not receiver.requests:
                await asyncio.sleep(0.05)
    finally:
        await receiver.stop()

    # THEN the model is in the registry, described from its files
    listed = (await client.get("/models", headers=alice.headers, params={"source": "hub"})).json()
    assert [m["name"] for m in listed["models"]] == [TINY_REPO]
    assert listed["models"][0]["id"] == finished["model_id"]
    records = await client.get(
        "/api/models", headers=alice.headers, params={"source": "hub", "model_type": "bert"}
    )
    assert [r["_id"] for r in records.json()] == [finished["model_id"]]  # seed 003's view of the same record
    other_type = await client.get("/api/models", headers=alice.headers, params={"model_type": "gpt2"})
    assert other_type.json() == []
    info = (await client.get(f"/models/{TINY_REPO}/info", headers=alice.headers)).json()
    assert info["status"] == "ready" and info["source"] == "hub"
    assert info["architecture"] == "BertForSequenceClassification" and info["model_type"] == "bert"
    assert info["labels"] == ["negative", "positive"] and info["max_sequence_length"] == 64
    assert info["parameters"] > 100_000 and info["task"] == "classification"
    # AND progress was recorded (what the WebSocket pushed) in files and bytes
    events = (await client.get(f"/api/jobs/{download['download_id']}/events", headers=alice.headers)).json()[
        "events"
    ]
    progress = [e["data"] for e in events if e["type"] == "progress"]
    # Events are handled concurrently: a progress event that arrives after the result is dropped (it would
    # move a finished job backwards), so the log need not end at 100%; every entry counts files and bytes.
    assert progress and all(p["files_total"] == finished["files_total"] for p in progress)
    assert all(0 <= p["files_done"] <= p["files_total"] and p["total_bytes"] > 0 for p in progress)
    assert [p["seq"] for p in progress] == sorted(p["seq"] for p in progress)
    # AND the webhook said so
    payload = json.loads(receiver.requests[0].body)
    assert payload["event"] == "model.downloaded"
    assert payload["data"]["model_name"] == TINY_REPO and payload["data"]["model_id"] == finished["model_id"]
    # AND a second request finds it instead of downloading again
    repeat = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": TINY_REPO, "task_type": "classification"},
    )
    assert repeat.status_code == 200 and repeat.json()["status"] == "available"
    assert repeat.json()["model_id"] == finished["model_id"]
    assert hub.fetched[f"{TINY_REPO}/model.safetensors"] == 1

    # WHEN the model is deleted  THEN its files go with it and its name is free again
    snapshot = (
        settings.state_dir / "objects" / f"users/{alice.user_id}/jobs/{download['download_id']}/snapshot"
    )
    assert (snapshot / "model.safetensors").is_file()
    deleted = await client.delete(f"/models/{finished['model_id']}", headers=alice.headers)
    assert deleted.status_code == 204
    assert not snapshot.exists() or not any(p.is_file() for p in snapshot.rglob("*"))
    assert (await client.get(f"/models/{TINY_REPO}/info", headers=alice.headers)).status_code == 404


async def test_an_unreachable_hub_fails_the_download_with_the_reason(
    client: httpx.AsyncClient,
    alice: Account,
    consumers: LocalConsumers,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{closed_port()}")
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    started = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": "distilbert-base-uncased", "task_type": "classification"},
    )
    assert started.status_code == 202, started.text
    finished = await _until_finished(client, alice, started.json()["download_id"])
    assert finished["status"] == "failed"
    assert "could not be reached" in finished["error"] and "distilbert-base-uncased" in finished["error"]
    # Nothing was registered; the model's info says what happened to its download
    assert (await client.get("/models", headers=alice.headers, params={"source": "hub"})).json()["total"] == 0
    info = (await client.get("/models/distilbert-base-uncased/info", headers=alice.headers)).json()
    assert info["status"] == "failed" and info["error"] == finished["error"]


async def test_download_requests_are_validated(
    client: httpx.AsyncClient, alice: Account, bob: Account
) -> None:
    cases = [
        ({"model_name": "../../etc/passwd", "task_type": "classification"}, "model_name"),
        ({"model_name": "bert-base-uncased", "task_type": "translation"}, "task_type"),
        ({"task_type": "classification"}, "model_name"),
    ]
    for body, field in cases:
        response = await client.post("/models/download", headers=alice.headers, json=body)
        assert response.status_code == 422, response.text
        assert response.json()["details"][0]["field"] == field
    builtin = await client.post(
        "/models/download",
        headers=alice.headers,
        json={"model_name": "sentence-transformers/all-MiniLM-L6-v2", "task_type": "embeddings"},
    )
    assert builtin.status_code == 200
    assert builtin.json()["status"] == "available" and builtin.json()["source"] == "builtin"
    assert (await client.get("/api/jobs", headers=alice.headers)).json()["jobs"] == []
    unknown = await client.get("/models/nobody/nothing/info", headers=alice.headers)
    assert unknown.status_code == 404
    assert "sentence-transformers/all-MiniLM-L6-v2" in unknown.json()["details"]["available"]
    assert (await client.get(f"/models/download/{ObjectId()}", headers=bob.headers)).status_code == 404
    assert (
        await client.post("/models/download", json={"model_name": "x", "task_type": "ner"})
    ).status_code == 401


async def _download(client: httpx.AsyncClient, account: Account, name: str, task: str) -> dict[str, Any]:
    """Download `name` through the API and wait for it; its /models/{name}/info."""
    started = await client.post(
        "/models/download", headers=account.headers, json={"model_name": name, "task_type": task}
    )
    assert started.status_code == 202, started.text
    finished = await _until_finished(client, account, started.json()["download_id"])
    assert finished["status"] == "completed", finished
    info: dict[str, Any] = (await client.get(f"/models/{name}/info", headers=account.headers)).json()
    return info


async def _task(
    client: httpx.AsyncClient, account: Account, path: str, body: dict[str, Any]
) -> httpx.Response:
    """POST a task and follow a 202 (the inference worker's first start) like a client would."""
    response = await client.post(path, headers={**account.headers, "Prefer": "wait=25"}, json=body)
    if response.status_code != 202:
        return response
    task = response.json()
    async with asyncio.timeout(120):
        while task["status"] == "pending":
            await asyncio.sleep(0.3)
            response = await client.get(f"/api/tasks/{task['task_id']}", headers=account.headers)
            task = response.json()
    return response


async def test_downloaded_models_answer_tasks(
    client: httpx.AsyncClient, alice: Account, bob: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    # GIVEN a downloaded classifier and a downloaded bare encoder
    info = await _download(client, alice, TINY_REPO, "classification")
    await _download(client, alice, TINY_ENCODER, "embeddings")
    assert info["tasks"] == ["classification"]

    # WHEN seed 000's classification names the classifier  THEN its own head answers, with its labels
    answered = await _task(
        client, alice, "/tasks/classification", {"text": "This is a great product!", "model_name": TINY_REPO}
    )
    assert answered.status_code == 200, answered.text
    result = answered.json()["result"]
    assert result["method"] == "sequence-classification"
    assert {item["label"] for item in result["labels"]} == {"negative", "positive"}
    assert math.isclose(sum(item["score"] for item in result["labels"]), 1.0, rel_tol=1e-5)
    assert answered.json()["model"] == TINY_REPO

    # AND the encoder embeds (mean pooling over its 32 hidden units) and classifies zero-shot
    embedded = await _task(
        client, alice, "/tasks/embeddings", {"text": ["a", "b"], "model_name": TINY_ENCODER}
    )
    assert embedded.status_code == 200, embedded.text
    vectors = embedded.json()["result"]
    assert vectors["dimension"] == 32 and vectors["count"] == 2
    assert (
        all(len(vector) == 32 for vector in vectors["embeddings"])
        and vectors["embeddings"][0] != vectors["embeddings"][1]
    )
    zero_shot = await _task(
        client,
        alice,
        "/tasks/classification",
        {"text": "I love it", "model_name": TINY_ENCODER, "candidate_labels": ["love", "hate"]},
    )
    assert zero_shot.status_code == 200, zero_shot.text
    assert zero_shot.json()["result"]["method"] == "zero-shot-embedding-similarity"

    # AND what the models cannot do is refused before any worker is asked
    wrong = await client.post(
        "/tasks/embeddings", headers=alice.headers, json={"text": "x", "model_name": TINY_REPO}
    )
    assert wrong.status_code == 422 and wrong.json()["details"][0]["field"] == "model_name"
    fixed = await client.post(
        "/tasks/classification",
        headers=alice.headers,
        json={"text": "x", "model_name": TINY_REPO, "candidate_labels": ["a", "b"]},
    )
    assert fixed.status_code == 422 and fixed.json()["details"][0]["field"] == "candidate_labels"
    # AND another user cannot use alice's download; alice's unknown names list her downloads
    other = await client.post(
        "/tasks/classification", headers=bob.headers, json={"text": "x", "model_name": TINY_REPO}
    )
    assert other.status_code == 404 and TINY_REPO not in other.json()["details"]["available"]
    unknown = await client.post(
        "/tasks/classification", headers=alice.headers, json={"text": "x", "model_name": "org/nothing"}
    )
    assert unknown.status_code == 404
    assert {TINY_REPO, TINY_ENCODER} <= set(unknown.json()["details"]["available"])


async def test_a_downloaded_causal_lm_generates_and_answers(
    client: httpx.AsyncClient, alice: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    # GIVEN a downloaded base causal LM (no chat template)
    info = await _download(client, alice, TINY_LM, "generation")
    assert info["architecture"] == "LlamaForCausalLM"
    assert info["tasks"] == ["generation", "qa", "summarization"]

    # WHEN it generates  THEN the text stays within the token budget, with its usage
    generated = await _task(
        client,
        alice,
        "/tasks/generation",
        {"prompt": "this product is", "model_name": TINY_LM, "max_tokens": 6, "temperature": 0},
    )
    assert generated.status_code == 200, generated.text
    result = generated.json()["result"]
    assert isinstance(result["text"], str) and result["usage"]["prompt_tokens"] >= 3
    # (random weights may end the turn at once: then it says so)
    used = result["usage"]["completion_tokens"]
    assert 0 <= used <= 6 and result["finish_reason"] == ("length" if used == 6 else "stop")
    # AND question answering runs the same instruction path; a span, when found, indexes the context
    context = "the product is great and the service is good"
    answered = await _task(
        client, alice, "/tasks/qa", {"question": "what is great", "context": context, "model_name": TINY_LM}
    )
    assert answered.status_code == 200, answered.text
    answer = answered.json()["result"]
    assert context[answer["start"] : answer["end"]] == answer["answer"]
    # AND an encoder task is refused before any worker is asked
    refused = await client.post(
        "/tasks/embeddings", headers=alice.headers, json={"text": "x", "model_name": TINY_LM}
    )
    assert refused.status_code == 422


async def test_downloaded_span_and_token_heads_answer_qa_and_ner(
    client: httpx.AsyncClient, alice: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    # GIVEN a downloaded SQuAD-style span head and a BIO token-classification head
    assert (await _download(client, alice, TINY_QA, "qa"))["tasks"] == ["qa"]
    await _download(client, alice, TINY_NER, "ner")

    # WHEN seed 000's QA names the span head  THEN the answer is read off the context
    context = "Hugging Face is a company based in New York City. Its headquarters are in DUMBO."
    answered = await _task(
        client,
        alice,
        "/tasks/qa",
        {"question": "Where is Hugging Face based?", "context": context, "model_name": TINY_QA},
    )
    assert answered.status_code == 200, answered.text
    answer = answered.json()["result"]
    assert answer["match"] == "extractive" and 0.0 < answer["score"] <= 1.0
    assert 0 <= answer["start"] < answer["end"] <= len(context)
    assert context[answer["start"] : answer["end"]] == answer["answer"]

    # AND NER with the token head: entities of its label types whose text is the span they name
    text = "Hugging Face Inc. is a company based in New York City."
    found = await _task(client, alice, "/tasks/ner", {"text": text, "model_name": TINY_NER})
    assert found.status_code == 200, found.text
    entities = found.json()["result"]["entities"]
    # (the head is biased to call every word B-ORG: each word, its sub-tokens merged, is one entity)
    words = re.findall(r"\w+|[^\w\s]", text)
    assert [e["text"] for e in entities] == words and {e["type"] for e in entities} == {"ORG"}
    assert all(text[e["start"] : e["end"]] == e["text"] and 0 < e["score"] <= 1 for e in entities)
    # AND each head does only its task
    refused = await client.post(
        "/tasks/ner", headers=alice.headers, json={"text": "x", "model_name": TINY_QA}
    )
    assert refused.status_code == 422


async def test_a_downloaded_encoder_decoder_summarizes_within_its_lengths(
    client: httpx.AsyncClient, alice: Account, hub: HubServer, consumers: LocalConsumers
) -> None:
    # GIVEN a downloaded T5
    info = await _download(client, alice, TINY_T5, "summarization")
    assert info["architecture"] == "T5ForConditionalGeneration"
    assert info["tasks"] == ["summarization", "generation"]

    # WHEN it summarizes with seed 000's length bounds  THEN the summary respects them (the end of
    # the summary is held back until min_length tokens)
    text = "the product was great and the service was good and this is it"
    summarized = await _task(
        client,
        alice,
        "/tasks/summarization",
        {"text": text, "max_length": 8, "min_length": 3, "model_name": TINY_T5},
    )
    assert summarized.status_code == 200, summarized.text
    summary = summarized.json()["result"]
    assert isinstance(summary["summary_text"], str)
    assert 3 <= summary["usage"]["completion_tokens"] <= 8
    assert summary["usage"]["prompt_tokens"] > len(text.split())  # the "summarize: " prefix came first
    # AND it generates from a prompt
    generated = await _task(
        client,
        alice,
        "/tasks/generation",
        {"prompt": "this product is", "model_name": TINY_T5, "max_tokens": 4, "temperature": 0},
    )
    assert generated.status_code == 200, generated.text
    assert generated.json()["result"]["usage"]["completion_tokens"] <= 4
