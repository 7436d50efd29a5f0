"""Many first uses at once on a fresh inference server (nothing preloaded): every task's model loads
while the others do. Each answer must be the right output, and generation afterwards must be what a
sequential load gives (greedy). Concurrent first loads once failed with "module 'transformers' has no
attribute 'AutoTokenizer'" and left weight tying off, so that SmolLM2 generated garbage with 200s."""

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
import torch

from stratus_worker.inference import registry
from stratus_worker.inference.engine import InferenceEngine

pytestmark = pytest.mark.slow  # a fresh interpreter loading every real model

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
NER = "spacy/en_core_web_sm"
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
ROOT = Path(__file__).resolve().parents[3]
TIMEOUT_S = 300  # the first run on a machine also converts SmolLM2's GGUF file (~1 min on 2 cores)

CONTEXT = "John works at Google in California. He moved there from Boston in 2019."
ARTICLE = (
    "The city council approved a new budget on Tuesday. It adds money for parks and public transport, "
    "and cuts spending on road building. The vote was seven to two."
)
GREEDY = {"prompt": "What is the capital of France?", "max_tokens": 16, "temperature": 0}
# Each request its own batch (a distinct task or options): the batcher reruns a failed batch of several
# requests one by one, which would hide a failed first load behind the rerun's success.
FIRST_USES: list[tuple[str, str, dict[str, Any], dict[str, Any]]] = [
    ("embeddings", EMBEDDER, {"text": "A man is playing a guitar."}, {"normalize": True}),
    ("embeddings", EMBEDDER, {"text": "A man is playing a guitar."}, {}),
    ("classification", EMBEDDER, {"text": "The striker scored twice in the final.",
                                  "candidate_labels": ["sports", "cooking", "politics"]}, {}),
    ("ner", NER, {"text": CONTEXT}, {}),
    ("generation", LLM, GREEDY, {}),
    ("generation", LLM, GREEDY, {"seed": 7}),  # greedy: the seed changes nothing but the batch
    ("qa", LLM, {"question": "Which company does John work at?", "context": CONTEXT}, {}),
    ("summarization", LLM, {"text": ARTICLE, "max_length": 24, "min_length": 0}, {}),
]  # fmt: skip


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "stderr.log"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stratus_worker.inference.server", "--host", "127.0.0.1", "--port", "0",
             "--threads", "1", "--log-level", "info"],
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


def check(task: str, item: dict[str, Any], options: dict[str, Any], output: dict[str, Any]) -> None:
    """The output is the right answer for the item, not just well-formed."""
    if task == "embeddings":
        assert output["dimension"] == 384
        norm = math.sqrt(sum(v * v for v in output["embedding"]))
        assert abs(norm - 1) < 1e-5 if options.get("normalize", False) else abs(norm - 1) > 0.01
    elif task == "classification":
        assert output["labels"][0]["label"] == "sports"
    elif task == "ner":
        found = {(e["type"], e["text"]) for e in output["entities"]}
        assert {("PERSON", "John"), ("ORG", "Google"), ("GPE", "California")} <= found
    elif task == "generation":
        assert "Paris" in output["text"]
    elif task == "qa":
        assert "Google" in output["answer"] and output["match"] in ("exact", "case-insensitive")
        assert item["context"][output["start"] : output["end"]] == output["answer"]
    else:
        assert output["summary_text"] and output["usage"]["completion_tokens"] <= item["max_length"]


def sequential_generation() -> dict[str, Any]:
    """GREEDY through a model loaded alone, in this process, on one thread as the server runs."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        [output] = InferenceEngine([registry.get(LLM)]).run("generation", LLM, [GREEDY])
    finally:
        torch.set_num_threads(previous)
    return output


def test_concurrent_first_uses_across_tasks_all_answer_correctly(fresh_server: str) -> None:
    # GIVEN a server that has loaded nothing yet
    assert httpx.get(f"{fresh_server}/health").json()["loaded"] == []

    # WHEN every task is used for the first time, all at once
    async def burst() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=fresh_server, timeout=TIMEOUT_S) as client:
            return await asyncio.gather(
                *(client.post("/invoke", json={"task": task, "model": model, "inputs": [item], "options": options})
                  for task, model, item, options in FIRST_USES)
            )  # fmt: skip

    responses = asyncio.run(burst())
    # THEN each answer is the right output (a built-in model that is installed has no reason to fail)
    for (task, _, item, options), response in zip(FIRST_USES, responses, strict=True):
        assert response.status_code == 200, (task, response.text)
        check(task, item, options, response.json()["outputs"][0])
    assert sorted(httpx.get(f"{fresh_server}/health").json()["loaded"]) == sorted({EMBEDDER, NER, LLM})
    # AND generation afterwards is exactly what a sequential load gives with greedy decoding
    after = httpx.post(
        f"{fresh_server}/invoke",
        json={"task": "generation", "model": LLM, "inputs": [GREEDY]},
        timeout=TIMEOUT_S,
    )
    assert after.status_code == 200
    assert after.json()["outputs"][0] == sequential_generation()
