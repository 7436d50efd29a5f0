"""Seed 002's LoRA/QLoRA start requests through the API: the dataset is checked before anything is
queued (bad lines named with their numbers), an unknown base model lists the trainable ones, and a
queued fine-tune appears in seed 003's /api/finetune list as a platform-managed job that PATCH cannot
move."""

from __future__ import annotations

import json
from typing import Any

import httpx

from tests.integration.api.accounts import Account

GOOD = [
    {"instruction": "What is the capital of France?", "output": "Paris."},
    {"prompt": "Say hi.", "completion": "Hi!"},
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
]


def _jsonl(rows: list[Any]) -> bytes:
    return b"".join((r if isinstance(r, str) else json.dumps(r)).encode() + b"\n" for r in rows)


async def _upload(client: httpx.AsyncClient, account: Account, name: str, data: bytes) -> str:
    response = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": (name, data)}, data={"name": name}
    )
    assert response.status_code == 201, response.text
    return str(response.json()["_id"])


def _body(dataset: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset_path": dataset,
        "output_dir": "/models/lora_adapter", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.05,
        "epochs": 3, "batch_size": 4, "learning_rate": 0.0002, "max_length": 512,
        "gradient_accumulation_steps": 4, **extra,
    }  # fmt: skip


async def test_start_by_dataset_name_estimates_and_lists_in_seed003(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await _upload(client, alice, "instructions.jsonl", _jsonl(GOOD * 10))
    started = await client.post(
        "/api/llm-finetuning/lora/start", headers=alice.headers, json=_body("/datasets/instructions.jsonl")
    )
    assert started.status_code == 201, started.text
    body = started.json()
    assert body["model_name"] == "lora_adapter" and body["method"] == "lora"
    estimate = body["estimate"]
    assert estimate["examples"] == 30 and estimate["steps"] == 3 * 2  # ceil(ceil(30/4)/4) per epoch
    assert 0 < estimate["tokens_per_example"]["min"] <= estimate["tokens_per_example"]["max"]

    status = await client.get(f"/api/training/status/{body['task_id']}", headers=alice.headers)
    assert status.status_code == 200 and status.json()["total_epochs"] == 3

    listed = (await client.get("/api/finetune", headers=alice.headers)).json()
    mine = next(j for j in listed if j["_id"] == body["task_id"])
    assert mine["managed_by"] == "platform" and mine["task_id"] == body["task_id"]
    assert mine["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert mine["status"] in ("preparing", "training", "completed", "failed")
    checkpoints = await client.get(
        f"/api/llm-finetuning/{body['task_id']}/checkpoints", headers=alice.headers
    )
    assert checkpoints.status_code == 200 and checkpoints.json()["checkpoints"] == []
    # Only the pipeline moves a platform job: seed 003's PATCH does not find it.
    patch = await client.patch(
        f"/api/finetune/{body['task_id']}/status",
        headers=alice.headers,
        params={"status_update": "completed"},
    )
    assert patch.status_code == 404


async def test_bad_lines_are_refused_with_their_numbers(client: httpx.AsyncClient, alice: Account) -> None:
    one_turn = {"messages": [{"role": "user", "content": "Hello?"}]}
    rows: list[Any] = [GOOD[0], {"instruction": "no answer"}, GOOD[1], {"text": "wrong shape"}, one_turn]
    dataset_id = await _upload(client, alice, "broken.jsonl", _jsonl(rows))
    response = await client.post(
        "/api/llm-finetuning/qlora/start", headers=alice.headers, json=_body(dataset_id)
    )
    assert response.status_code == 422, response.text
    problem = response.json()
    assert problem["code"] == "INVALID_EXAMPLES"
    assert "3 bad example(s)" in problem["message"]
    assert [d["line"] for d in problem["details"]] == [2, 4, 5]
    assert "'output' must be a non-empty string" in problem["details"][0]["message"]
    jobs = (await client.get("/api/jobs", headers=alice.headers)).json()
    assert not [j for j in jobs.get("items", jobs.get("jobs", [])) if j.get("kind") == "finetune"]


async def test_unknown_base_model_lists_the_trainable_ones(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _upload(client, alice, "ok.jsonl", _jsonl(GOOD))
    response = await client.post(
        "/api/llm-finetuning/lora/start",
        headers=alice.headers,
        json=_body(dataset_id, base_model="llama-2-7b"),
    )
    assert response.status_code == 422, response.text
    assert "HuggingFaceTB/SmolLM2-135M-Instruct" in response.json()["message"]
    assert response.json()["details"][0]["field"] == "base_model"


async def test_test_and_merge_wait_for_a_completed_job(client: httpx.AsyncClient, alice: Account) -> None:
    dataset_id = await _upload(client, alice, "ok.jsonl", _jsonl(GOOD))
    started = await client.post(
        "/api/llm-finetuning/lora/start", headers=alice.headers, json=_body(dataset_id)
    )
    task_id = started.json()["task_id"]
    tried = await client.post(
        "/api/llm-finetuning/test", headers=alice.headers, json={"task_id": task_id, "prompt": "hi"}
    )
    merged = await client.post("/api/llm-finetuning/merge", headers=alice.headers, json={"task_id": task_id})
    # The local worker may already be running it, never finished in this instant.
    assert tried.status_code == 409 and merged.status_code == 409, (tried.text, merged.text)


async def test_token_statistics_are_exact_with_the_base_models_tokenizer(
    client: httpx.AsyncClient, alice: Account
) -> None:
    """The estimate counts with SmolLM2's own tokenizer and chat template (shipped with the API) and
    agrees with transformers' apply_chat_template on the same files; a validation dataset is named."""
    from stratus.capabilities.finetune import tokens

    await _upload(
        client, alice, "train.jsonl", _jsonl(GOOD * 3 + [{"prompt": "Long?", "completion": "word " * 80}])
    )
    await _upload(client, alice, "valid.jsonl", _jsonl(GOOD))
    started = await client.post(
        "/api/llm-finetuning/lora/start",
        headers=alice.headers,
        json=_body("train.jsonl", max_length=64, batch_size=2, gradient_accumulation_steps=1, epochs=1,
                   validation_dataset="valid.jsonl"),
    )  # fmt: skip
    assert started.status_code == 201, started.text
    estimate = started.json()["estimate"]
    assert estimate["method"].startswith("exact")
    assert estimate["examples"] == 10 and estimate["validation_examples"] is None
    assert estimate["truncated"] == 1 and estimate["steps"] == 5
    counter = tokens.TokenCounter(tokens.shipped("HuggingFaceTB/SmolLM2-135M-Instruct"))  # type: ignore[arg-type]
    from stratus.capabilities.finetune.examples import parse

    lengths = sorted(full for _, full in counter.lengths(parse(_jsonl(GOOD), "jsonl").examples))
    assert estimate["tokens_per_example"]["min"] == lengths[0]
    assert estimate["tokens_per_example"]["max"] > 64


async def test_a_bad_validation_dataset_and_an_answerless_max_length_are_refused(
    client: httpx.AsyncClient, alice: Account
) -> None:
    await _upload(client, alice, "fine.jsonl", _jsonl(GOOD))
    await _upload(client, alice, "bad-valid.jsonl", _jsonl([GOOD[0], {"instruction": "?"}]))
    bad = await client.post(
        "/api/llm-finetuning/lora/start", headers=alice.headers,
        json=_body("fine.jsonl", validation_dataset="bad-valid.jsonl"),
    )  # fmt: skip
    assert bad.status_code == 422, bad.text
    assert bad.json()["code"] == "INVALID_EXAMPLES"
    assert bad.json()["details"][0] == {
        "field": "validation_dataset",
        "line": 2,
        "message": "'output' must be a non-empty string",
    }
    short = await client.post(
        "/api/llm-finetuning/lora/start", headers=alice.headers, json=_body("fine.jsonl", max_length=16)
    )
    assert short.status_code == 422, short.text
    assert short.json()["code"] == "NO_ANSWER_WITHIN_MAX_LENGTH"
    assert short.json()["details"][0]["field"] == "max_length"


async def test_qlora_is_refused_with_the_reason_where_4bit_cannot_run(
    client: httpx.AsyncClient, alice: Account, container: Any
) -> None:
    await _upload(client, alice, "q.jsonl", _jsonl(GOOD))
    container.llm_finetune._four_bit_refusal = (
        "fine-tunes run on SageMaker ml.m5.xlarge, which has no NVIDIA GPU"
    )
    refused = await client.post(
        "/api/llm-finetuning/qlora/start", headers=alice.headers, json=_body("q.jsonl")
    )
    assert refused.status_code == 422, refused.text
    assert refused.json()["code"] == "QLORA_UNAVAILABLE" and "ml.m5.xlarge" in refused.json()["message"]
    lora = await client.post("/api/llm-finetuning/lora/start", headers=alice.headers, json=_body("q.jsonl"))
    assert lora.status_code == 201, lora.text  # LoRA is not refused: nothing else is trained silently
