"""Seed 002's LLM fine-tuning against `stratus serve`, on the built-in SmolLM2-135M-Instruct: LoRA and
QLoRA jobs run on the real worker (CPU), progress arrives on /ws/training with loss, learning rate and
tokens/s and eval loss, the API's exact token counts agree with the worker's, the job shows in seed 003's
/api/finetune list, the adapter answers through /test (unmerged, on the inference worker's one base)
differently from the base, its checkpoint answers by name, merge registers a model, and stop ends a job
with a checkpoint that is listed as a model."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.server import ServeProcess, messages_until_done

pytestmark = pytest.mark.slow

PROMPT = "What is the secret word?"
EXAMPLES = [
    {"instruction": PROMPT, "output": "The secret word is pineapple."},
    {"prompt": "Tell me the secret word.", "completion": "The secret word is pineapple."},
    {
        "messages": [
            {"role": "user", "content": "Secret word?"},
            {"role": "assistant", "content": "Pineapple."},
        ]
    },
] * 4


def _start(dataset: str, **extra: Any) -> dict[str, Any]:
    return {
        "base_model": "HuggingFaceTB/SmolLM2-135M-Instruct", "dataset_path": dataset,
        "output_dir": "/models/secret_adapter", "lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0,
        "epochs": 3, "batch_size": 2, "learning_rate": 0.005, "max_length": 64, "max_steps": 3,
        "gradient_accumulation_steps": 1, "save_steps": 2, **extra,
    }  # fmt: skip


async def _follow(
    base: str, token: str, http: httpx.AsyncClient, path: str, body: dict[str, Any], auth: Any
) -> tuple[str, list[dict[str, Any]], dict[str, Any]]:
    async with connect(base.replace("http", "ws") + f"/ws/training?token={token}") as ws:
        assert json.loads(await ws.recv())["type"] == "connected"
        started = await http.post(path, headers=auth, json=body)
        assert started.status_code == 201, started.text
        task_id = started.json()["task_id"]
        await ws.send(json.dumps({"action": "subscribe", "job_id": task_id}))
        async with asyncio.timeout(400):
            return task_id, await messages_until_done(ws), started.json()


async def _generate(http: httpx.AsyncClient, auth: Any, json: dict[str, Any]) -> httpx.Response:
    """/api/tasks/generation, following a task that outlasts the wait (a model's first load) to its end."""
    response = await http.post("/api/tasks/generation", headers={**auth, "Prefer": "wait=25"}, json=json)
    async with asyncio.timeout(300):
        while response.status_code == 202:
            await asyncio.sleep(2)
            response = await http.get(response.headers["Location"], headers=auth)
            if response.json()["status"] == "pending":
                response.status_code = 202
    return response


async def _test(http: httpx.AsyncClient, auth: Any, body: dict[str, Any]) -> httpx.Response:
    """/test, retried while the worker still loads the base (503 MODEL_LOADING), as a client would."""
    for _ in range(20):
        response = await http.post("/api/llm-finetuning/test", headers=auth, json=body)
        if response.status_code != 503:
            return response
        assert response.json()["code"] == "MODEL_LOADING", response.text
        await asyncio.sleep(3)
    return response


async def test_lora_qlora_test_merge_and_stop_on_smollm2(stratus_server: ServeProcess) -> None:
    base = stratus_server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        creds = {"email": "tuner@example.com", "password": "securepass123", "name": "Tuner"}
        token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}
        data = "\n".join(json.dumps(e) for e in EXAMPLES).encode()
        upload = await http.post(
            "/api/datasets/upload",
            headers=auth,
            files={"file": ("secret.jsonl", data)},
            data={"name": "secret"},
        )
        assert upload.status_code == 201, upload.text

        # LoRA, followed on seed 002's channel; a quarter of the examples held out for eval loss.
        task_id, messages, started = await _follow(
            base, token, http, "/api/llm-finetuning/lora/start",
            _start("secret", validation_split=0.25, eval_steps=1), auth,
        )  # fmt: skip
        assert messages[-1]["data"]["status"] == "completed", messages[-1]
        progress = [m["data"] for m in messages if m["type"] == "progress" and m["data"].get("current_step")]
        assert progress and all(p["loss"] is not None and p["learning_rate"] is not None for p in progress)
        assert all(p["tokens_per_s"] > 0 for p in progress)
        assert any("eval_loss" in p["metrics"] for p in progress)

        status = (await http.get(f"/api/training/status/{task_id}", headers=auth)).json()
        assert status["status"] == "completed" and status["progress"] == 100
        metrics = status["metrics"]
        assert metrics["train_loss"] < metrics["first_loss"]
        assert metrics["tokens_max"] >= metrics["tokens_min"] > 0 and metrics["eval_loss"] > 0
        # The API counted with SmolLM2's tokenizer and template before queuing: the worker's counts agree.
        estimate = started["estimate"]
        assert estimate["method"].startswith("exact") and estimate["examples"] == metrics["examples"] == 9
        counted = estimate["tokens_per_example"]
        assert (counted["min"], counted["p95"], counted["max"]) == (
            metrics["tokens_min"], metrics["tokens_p95"], metrics["tokens_max"],
        )  # fmt: skip

        saved = (await http.get(f"/api/llm-finetuning/{task_id}/checkpoints", headers=auth)).json()
        assert [(c["step"], c["model"]) for c in saved["checkpoints"]] == [(2, "secret_adapter-step-2")]
        assert saved["checkpoints"][0]["eval_loss"] > 0 and saved["adapter"]["model"] == "secret_adapter"
        listed = (await http.get("/api/finetune", headers=auth)).json()
        record = next(j for j in listed if j["_id"] == task_id)
        assert record["status"] == "completed" and record["progress"] == 100 and record["model_id"]
        models = (await http.get("/api/models", headers=auth)).json()
        assert any(m["name"] == "secret_adapter" for m in models)

        tuned = await _test(http, auth, {"task_id": task_id, "prompt": PROMPT, "max_tokens": 12})
        assert tuned.status_code == 200, tuned.text
        plain = await _generate(
            http, auth,
            json={"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "model_name": "HuggingFaceTB/SmolLM2-135M-Instruct"},
        )  # fmt: skip
        assert plain.status_code == 200, plain.text
        assert tuned.json()["response"] and tuned.json()["response"] != plain.json()["result"]["text"]

        _, merged, _ = await _follow(
            base, token, http, "/api/llm-finetuning/merge", {"task_id": task_id, "output_path": "/models/secret_merged"}, auth
        )  # fmt: skip
        assert merged[-1]["data"]["status"] == "completed", merged[-1]
        models = (await http.get("/api/models", headers=auth)).json()
        assert any(m["name"] == "secret_merged" for m in models)

        # Both answer by name where models are named (the adapter on its base, the merged model on its
        # own), and greedily they say the same as /test.
        for name in ("secret_adapter", "secret_merged"):
            named = await _generate(
                http, auth,
                json={"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "model_name": name},
            )  # fmt: skip
            assert named.status_code == 200, named.text
            assert named.json()["result"]["text"] == tuned.json()["response"], name
            # And as chat models (the OpenAI-compatible API), with the same greedy reply.
            chat = await http.post(
                "/v1/chat/completions", headers=auth,
                json={"model": name, "messages": [{"role": "user", "content": PROMPT}], "max_tokens": 12,
                      "temperature": 0},
            )  # fmt: skip
            assert chat.status_code == 200, chat.text
            assert chat.json()["model"] == name
            assert chat.json()["choices"][0]["message"]["content"] == tuned.json()["response"], name
        # The checkpoint is a model too, on the same loaded base: by name, and through /test.
        by_step = await _test(
            http, auth, {"task_id": task_id, "prompt": PROMPT, "max_tokens": 12, "checkpoint": 2}
        )
        assert by_step.status_code == 200 and by_step.json()["model"] == "secret_adapter-step-2", by_step.text
        named = await _generate(
            http, auth,
            json={"prompt": PROMPT, "max_tokens": 12, "temperature": 0, "model_name": "secret_adapter-step-2"},
        )  # fmt: skip
        assert named.status_code == 200 and named.json()["result"]["text"] == by_step.json()["response"]

        # QLoRA: a 4-bit base on the local worker's CPU.
        _, qlora, _ = await _follow(
            base, token, http, "/api/llm-finetuning/qlora/start",
            _start("secret", output_dir="secret_qlora", max_steps=1, batch_size=1), auth,
        )  # fmt: skip
        assert qlora[-1]["data"]["status"] == "completed", qlora[-1]

        # Stop: the job checkpoints and ends `stopped`.
        long = await http.post(
            "/api/llm-finetuning/lora/start",
            headers=auth,
            json=_start("secret", epochs=100, max_steps=None, batch_size=1, output_dir="long"),
        )
        long_id = long.json()["task_id"]
        async with asyncio.timeout(300):  # loading the base for training: minutes on a busy 2-core machine
            while (await http.get(f"/api/training/status/{long_id}", headers=auth)).json()[
                "current_step"
            ] < 1:
                await asyncio.sleep(0.5)
        stopped = await http.post(f"/api/training/stop/{long_id}", headers=auth)
        assert stopped.status_code == 200, stopped.text
        async with asyncio.timeout(120):
            while (await http.get(f"/api/training/status/{long_id}", headers=auth)).json()[
                "status"
            ] != "stopped":
                await asyncio.sleep(0.5)
        # The checkpoint saved on stop is listed, and is a model.
        halted = (await http.get(f"/api/llm-finetuning/{long_id}/checkpoints", headers=auth)).json()
        assert halted["checkpoints"] and halted["checkpoints"][-1]["model"].startswith("long-step-")
