"""Seed 002's LLM fine-tuning routes (/api/llm-finetuning/*); status through /api/training/status/{id}
and /ws/training like every job."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from stratus.api.deps import LLMFineTunes
from stratus.api.idempotency import IdempotencyKey, started_job
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.finetune.llm_schemas import (
    AdapterTest,
    AdapterTestAnswer,
    LoraStart,
    LoraStarted,
    MergeStart,
    MergeStarted,
)
from stratus.db.ids import ObjectIdStr

router = APIRouter(
    prefix="/api/llm-finetuning", tags=["llm fine-tuning"], route_class=StratusRoute, dependencies=[RateLimit]
)


def _started(job: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": str(job["_id"]),
        "status": job["status"],
        "method": job.get("method", ""),
        "model_name": job["model_name"],
        "estimate": job.get("estimate") or {},
    }


@router.post("/lora/start", status_code=status.HTTP_201_CREATED, response_model=LoraStarted)
async def start_lora(
    body: LoraStart, user: CurrentUser, finetune: LLMFineTunes, response: Response, key: IdempotencyKey = None
) -> dict[str, Any]:
    """Queue a LoRA fine-tune of `base_model` on one of your datasets (checked first: bad lines are
    refused with their numbers); the answer estimates examples, tokens and steps."""
    return _started(
        started_job(response, await finetune.start(user.user_id, body, method="lora", idempotency_key=key))
    )


@router.post("/qlora/start", status_code=status.HTTP_201_CREATED, response_model=LoraStarted)
async def start_qlora(
    body: LoraStart, user: CurrentUser, finetune: LLMFineTunes, response: Response, key: IdempotencyKey = None
) -> dict[str, Any]:
    """The same as LoRA on a 4-bit (nf4) base: bitsandbytes on the worker's GPU (or its CPU library)."""
    return _started(
        started_job(response, await finetune.start(user.user_id, body, method="qlora", idempotency_key=key))
    )


@router.post("/test", response_model=AdapterTestAnswer)
async def test_adapter(body: AdapterTest, user: CurrentUser, finetune: LLMFineTunes) -> dict[str, Any]:
    """Generate with the base model and the job's adapter on the side (not merged); 409 until done."""
    return await finetune.test(user.user_id, body)


@router.post("/merge", status_code=status.HTTP_201_CREATED, response_model=MergeStarted)
async def merge_adapter(
    body: MergeStart,
    user: CurrentUser,
    finetune: LLMFineTunes,
    response: Response,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Queue a merge of the job's adapter into its base; the merged model is registered as `output_path`."""
    job = started_job(response, await finetune.merge(user.user_id, body, idempotency_key=key))
    return {"task_id": str(job["_id"]), "status": job["status"], "model_name": job["model_name"]}


@router.get("/{task_id}/checkpoints")
async def list_checkpoints(task_id: ObjectIdStr, user: CurrentUser, finetune: LLMFineTunes) -> dict[str, Any]:
    """The checkpoints a fine-tune saved in object storage (step and key), and its final adapter."""
    return await finetune.checkpoints(user.user_id, task_id)
