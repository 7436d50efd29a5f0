"""`python -m stratus_worker.inference.server` as a subprocess: the HTTP contract, micro-batching of
concurrent requests (each gets its own outputs, in fewer engine calls than requests) and the errors."""

from __future__ import annotations

import asyncio
import math
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.slow  # a fresh interpreter loading real models

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
NER = "spacy/en_core_web_sm"
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("inference-server") / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [
                sys.executable, "-m", "stratus_worker.inference.server", "--host", "127.0.0.1", "--port", "0",
                "--threads", "1", "--max-wait-ms", "50", "--preload", EMBEDDER, "--log-level", "info",
            ],
            cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("READY ") and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=1):
                line = proc.stdout.readline()
        assert line.startswith("READY "), f"no READY line; stderr:\n{log.read_text()[-3000:]}"
        yield f"http://127.0.0.1:{int(line.split()[1])}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def invoke(url: str, body: Any) -> httpx.Response:
    return httpx.post(f"{url}/invoke", json=body, timeout=120)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


def test_health_and_catalogue(server: str) -> None:
    health = httpx.get(f"{server}/health").json()
    assert health["status"] == "ok" and EMBEDDER in health["loaded"]
    assert {"batches_run", "requests_served", "max_batch", "max_wait_ms"} <= set(health)
    models = httpx.get(f"{server}/models").json()["models"]
    assert [m["name"] for m in models][:3] == [EMBEDDER, NER, LLM]  # then seed 002's perception models
    for model in models:
        assert {
            "name",
            "tasks",
            "architecture",
            "parameters",
            "size_mb",
            "max_sequence_length",
            "labels",
        } <= set(model)
        assert model["source"] == "builtin"


def test_concurrent_requests_are_batched_and_each_gets_its_own_outputs(server: str) -> None:
    texts = [
        f"Request {i} is about {topic}." for i, topic in enumerate(["cats", "rockets", "soup", "jazz"] * 4)
    ]
    requests = [[{"text": t}] if i % 4 else [{"text": t}, {"text": t.upper()}] for i, t in enumerate(texts)]
    reference = invoke(
        server, {"task": "embeddings", "model": EMBEDDER, "inputs": [i for r in requests for i in r]}
    )
    assert reference.status_code == 200
    expected = iter(o["embedding"] for o in reference.json()["outputs"])

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=120) as client:
            body = {"task": "embeddings", "model": EMBEDDER, "options": {}}
            return await asyncio.gather(
                *(client.post(f"{server}/invoke", json={**body, "inputs": r}) for r in requests)
            )

    before = httpx.get(f"{server}/health").json()["batches_run"]
    responses = asyncio.run(send_all())
    after = httpx.get(f"{server}/health").json()["batches_run"]
    assert after - before < len(requests)
    assert max(r.json()["batched_requests"] for r in responses) > 1
    for request, response in zip(requests, responses, strict=True):
        assert response.status_code == 200
        body = response.json()
        assert (body["task"], body["model"]) == ("embeddings", EMBEDDER)
        assert body["batch_size"] >= len(request) and body["duration_ms"] >= body["engine_ms"] > 0
        assert len(body["outputs"]) == len(request)
        for output in body["outputs"]:
            assert cosine(output["embedding"], next(expected)) > 0.9999  # its own text, in order


def test_ner_through_the_server(server: str) -> None:
    response = invoke(
        server, {"task": "ner", "model": NER, "inputs": [{"text": "John works at Google in California"}]}
    )
    assert response.status_code == 200
    entities = response.json()["outputs"][0]["entities"]
    assert [(e["type"], e["text"], e["start"], e["end"], e["score"]) for e in entities] == [
        ("PERSON", "John", 0, 4, None),
        ("ORG", "Google", 14, 20, None),
        ("GPE", "California", 24, 34, None),
    ]
    assert NER in httpx.get(f"{server}/health").json()["loaded"]


@pytest.mark.parametrize(
    ("body", "status", "error"),
    [
        (
            {"task": "embeddings", "model": "bert-base-uncased", "inputs": [{"text": "x"}]},
            404,
            "model_not_found",
        ),
        ({"task": "ner", "model": EMBEDDER, "inputs": [{"text": "x"}]}, 422, "wrong_task"),
        ({"task": "translation", "model": EMBEDDER, "inputs": [{"text": "x"}]}, 400, "unknown_task"),
        ({"task": "embeddings", "model": EMBEDDER, "inputs": [{"txt": "x"}]}, 400, "invalid_input"),
        (
            {"task": "embeddings", "model": EMBEDDER, "inputs": [{"text": "x"}], "options": {"x": 1}},
            400,
            "invalid_input",
        ),
        ({"task": "embeddings", "model": EMBEDDER, "inputs": []}, 400, "invalid_request"),
        ({"model": EMBEDDER, "inputs": [{"text": "x"}]}, 400, "invalid_request"),
        (["not", "an", "object"], 400, "invalid_request"),
    ],
)
def test_errors_are_clear(server: str, body: Any, status: int, error: str) -> None:
    response = invoke(server, body)
    assert response.status_code == status
    payload = response.json()
    assert payload["error"] == error and payload["message"]
    if error == "model_not_found":
        assert payload["available"][:3] == [EMBEDDER, NER, LLM]
    if error == "wrong_task":
        assert payload["supported_tasks"] == ["embeddings", "classification"]


def test_a_body_that_is_not_json(server: str) -> None:
    response = httpx.post(f"{server}/invoke", content=b"{oops", headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.json()["error"] == "invalid_request"


def test_the_sagemaker_contract(server: str) -> None:
    """`serve` in the image runs this server: /ping, and /invocations answering as /invoke does, with
    errors in a 200 body (asynchronous inference stores only 2xx answers in the output location)."""
    assert httpx.get(f"{server}/ping").status_code == 200
    body = {"task": "embeddings", "model": EMBEDDER, "inputs": [{"text": "a sentence"}]}
    direct = invoke(server, body).json()
    through = httpx.post(f"{server}/invocations", json=body, timeout=120)
    assert through.status_code == 200
    assert cosine(through.json()["outputs"][0]["embedding"], direct["outputs"][0]["embedding"]) > 0.9999
    failed = httpx.post(f"{server}/invocations", json={**body, "model": "bert-base-uncased"}, timeout=120)
    assert failed.status_code == 200
    assert failed.json()["error"] == "model_not_found" and failed.json()["status"] == 404
