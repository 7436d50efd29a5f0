"""A fine-tune's checkpoints are registry models: when its result arrives (completed) the final adapter
and each checkpoint are registered (`<name>-step-<n>`, source finetuned, served on the job's base), the
listing names them with their eval loss and no storage keys, generation resolves them by name like any
fine-tuned model, and a stopped job keeps its checkpoints, registered when listed or named by /test."""

from __future__ import annotations

from typing import Any

import httpx
from bson import ObjectId

from stratus.capabilities.finetune import spec
from stratus.composition import Container
from stratus.jobs.events import RESULT
from stratus.ports.events import Event
from tests.integration.api.accounts import Account

BASE = {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"}


async def _running_job(container: Container, account: Account, name: str) -> str:
    doc: dict[str, Any] = {
        "user_id": ObjectId(account.user_id), "kind": spec.FINETUNE, "managed_by": spec.MANAGED_BY_PLATFORM,
        "method": "lora", "status": "running", "base_model": BASE["name"], "model_name": name,
        "params": {"method": "lora", "base": BASE, "hyperparameters": {"lora_r": 8}}, "progress": 50.0,
        "metrics": {},
    }  # fmt: skip
    job, _ = await container.job_repo.insert(doc)
    return str(job["_id"])


def _artifacts(job_id: str, steps: list[int]) -> dict[str, str]:
    prefix = f"users/u/jobs/{job_id}"
    return {
        **{f"checkpoint_step_{n}": f"{prefix}/checkpoints/step-{n}" for n in steps},
        "checkpoint": f"{prefix}/checkpoints/step-{steps[-1]}",
        "adapter": f"{prefix}/adapter",
    }


async def test_completed_checkpoints_are_models_named_by_step(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    job_id = await _running_job(container, alice, "tuned")
    files = ["adapter_config.json", "adapter_model.safetensors", "README.md"]
    result = {
        "job_id": job_id, "seq": 9, "status": "completed", "final_metrics": {"train_loss": 0.5, "eval_loss": 0.7},
        "history": {"loss": [1.0, 0.5], "eval_step": [2.0, 4.0, 5.0], "eval_loss": [0.9, 0.8, 0.7]},
        "artifacts": _artifacts(job_id, [2, 4]), "model": {"files": files, "architecture": {"class": "LlamaForCausalLM"}},
    }  # fmt: skip
    for _ in range(2):  # a redelivered result registers nothing twice
        await container.job_events.handle(Event(RESULT, result).envelope())
    listed = await client.get(f"/api/llm-finetuning/{job_id}/checkpoints", headers=alice.headers)
    assert listed.status_code == 200, listed.text
    body = listed.json()
    assert [(c["step"], c["model"], c["eval_loss"]) for c in body["checkpoints"]] == [
        (2, "tuned-step-2", 0.9), (4, "tuned-step-4", 0.8),
    ]  # fmt: skip
    assert all(c["model_id"] for c in body["checkpoints"]) and body["adapter"]["model"] == "tuned"
    assert "users/" not in listed.text  # names, never storage keys or paths

    models = await container.model_repo.collection.find({"user_id": ObjectId(alice.user_id)}).to_list()
    assert sorted(m["name"] for m in models) == ["tuned", "tuned-step-2", "tuned-step-4"]
    step2 = next(m for m in models if m["name"] == "tuned-step-2")
    assert step2["source"] == "finetuned" and step2["adapter"] and step2["files"] == files
    source = spec.serving_source(step2)
    assert source["snapshot"].endswith("/checkpoints/step-2") and source["adapter"] == {"base": BASE}
    # Generation (and chat, through the same resolve) finds a checkpoint by its name.
    name, resolved = await container.tasks.resolve(ObjectId(alice.user_id), "generation", "tuned-step-2")
    assert name == "tuned-step-2" and resolved == source


async def test_a_stopped_jobs_checkpoints_stay_usable(
    client: httpx.AsyncClient, alice: Account, bob: Account, container: Container
) -> None:
    job_id = await _running_job(container, alice, "halted")
    stopped = {"job_id": job_id, "seq": 5, "status": "stopped", "artifacts": _artifacts(job_id, [3])}
    await container.job_events.handle(Event(RESULT, stopped).envelope())
    job = await container.job_repo.get(ObjectId(job_id))
    assert job is not None and job["status"] == "stopped"

    listed = (await client.get(f"/api/llm-finetuning/{job_id}/checkpoints", headers=alice.headers)).json()
    assert [c["model"] for c in listed["checkpoints"]] == ["halted-step-3"] and listed["adapter"] is None
    test = await client.post(
        "/api/llm-finetuning/test", headers=alice.headers, json={"task_id": job_id, "prompt": "hi"}
    )
    assert test.status_code == 409 and "checkpoint" in test.json()["message"]
    missing = await client.post(
        "/api/llm-finetuning/merge", headers=alice.headers, json={"task_id": job_id, "checkpoint": 7}
    )
    assert missing.status_code == 404 and "saved: 3" in missing.json()["message"]
    merge = await client.post(
        "/api/llm-finetuning/merge", headers=alice.headers,
        json={"task_id": job_id, "checkpoint": 3, "output_path": "/models/halted_merged"},
    )  # fmt: skip
    assert merge.status_code == 201, merge.text
    merge_job = await container.job_repo.get(ObjectId(merge.json()["task_id"]))
    assert merge_job is not None and merge_job["model_name"] == "halted_merged"
    assert merge_job["params"]["adapter"]["snapshot"].endswith("/checkpoints/step-3")
    # Another user neither lists nor uses them.
    other = await client.get(f"/api/llm-finetuning/{job_id}/checkpoints", headers=bob.headers)
    assert other.status_code == 404


async def test_test_answers_503_while_the_worker_still_loads_the_base(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    from stratus.ports.inference import InferencePending, InferenceRequest, InferenceResult

    class Loading:
        requests: list[InferenceRequest] = []

        async def invoke(self, request: InferenceRequest, *, wait_s: float) -> InferenceResult:
            self.requests.append(request)
            raise InferencePending("ref-1")

    job_id = await _running_job(container, alice, "slow")
    result = {"job_id": job_id, "seq": 2, "status": "completed", "final_metrics": {}, "artifacts": _artifacts(job_id, [1]),
              "model": {"files": list(spec.ADAPTER_FILES)}}  # fmt: skip
    await container.job_events.handle(Event(RESULT, result).envelope())
    loading = Loading()
    container.llm_finetune._inference = loading  # type: ignore[assignment]
    response = await client.post(
        "/api/llm-finetuning/test",
        headers=alice.headers,
        json={"task_id": job_id, "prompt": "hi", "checkpoint": 1},
    )
    assert response.status_code == 503 and response.json()["code"] == "MODEL_LOADING", response.text
    [sent] = loading.requests
    assert (
        sent.model == "slow-step-1" and sent.source is not None and sent.source["adapter"] == {"base": BASE}
    )
