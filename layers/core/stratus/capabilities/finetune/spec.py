"""LLM fine-tuning job kinds (seed 002): `finetune` trains a LoRA/QLoRA adapter, `finetune_merge` folds
a finished adapter into its base. Both run on the pipeline; their limits are written once here, read by
the request schemas and by the worker.

Seed 003's client-managed records share the kind name `finetune` (`managed_by: "client"`); the jobs
the platform runs carry `managed_by: "platform"` (see service.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratus.capabilities.training import spec as training
from stratus.jobs.kinds import JobKind, JobWebhooks, Resources

FINETUNE = "finetune"
MERGE = "finetune_merge"
MANAGED_BY_PLATFORM = "platform"
FINETUNED = "finetuned"  # the registry `source` of adapters and merged models

METHODS = ("lora", "qlora")
# Limits (API validation and the worker's own checks).
LORA_R = (1, 256)
MAX_EPOCHS = 100
MAX_BATCH_SIZE = 256
MAX_LENGTH = (16, 8192)
MAX_GRAD_ACCUM = 1024
MAX_DATASET_BYTES = 200 * 1024 * 1024
MAX_EXAMPLES = 1_000_000
LOSS_EXPLODES_AT = 1e4  # a train loss above this (or NaN/inf) stops the job with that reason
DEFAULT_SAVE_STEPS = 50
CHARS_PER_TOKEN = 4.0  # the API's estimate when a base has no tokenizer.json to count with
ESTIMATE_TOKENS_PER_S = 2000  # the time estimate's throughput (a small GPU, a ~1B model)
TRAINABLE_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj")
ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")  # what peft saves and loads


# QLoRA's 4-bit base (bitsandbytes nf4) needs an NVIDIA GPU (CUDA) or bitsandbytes' CPU library (>= 0.50,
# x86-64 and arm64 Linux). SageMaker instance families with an NVIDIA GPU of compute capability >= 7.0
# (T4, A10G, L4, L40S, V100, A100, H100, H200, B200); others (CPU types, Inferentia/Trainium, K80/M60
# families) cannot, so QLoRA is refused at the API with the reason instead of failing on the instance.
NVIDIA_FAMILIES = frozenset(
    {"g4dn", "g5", "g6", "g6e", "gr6", "p3", "p3dn", "p4d", "p4de", "p5", "p5e", "p5en", "p6"}
)


def four_bit_refusal(settings: Any) -> str | None:
    """Why this deployment cannot train QLoRA's 4-bit base, or None when it can:
    - local: the worker runs in this Python environment: bitsandbytes must be installed (its CPU library
      trains 4-bit without a GPU);
    - sagemaker: the `finetune` kind's instance type (per-kind setting, else the GPU type) must be an
      NVIDIA family above;
    - batch: GPU jobs go to a GPU compute environment (AWS Batch GPUs are NVIDIA): allowed."""
    backend = getattr(settings, "job_backend", "local")
    if backend == "local":
        import importlib.util

        if importlib.util.find_spec("bitsandbytes") is None:
            return "the local worker has no bitsandbytes (pip install 'bitsandbytes>=0.50', in the ml extra)"
        return None
    if backend == "sagemaker":
        instance = dict(getattr(settings, "sagemaker_instance_types", {}) or {}).get(FINETUNE) or str(
            getattr(settings, "sagemaker_gpu_instance_type", "")
        )
        family = instance.removeprefix("ml.").split(".", 1)[0]
        if family not in NVIDIA_FAMILIES:
            return (
                f"fine-tunes run on SageMaker {instance}, which has no NVIDIA GPU for bitsandbytes' 4-bit "
                f"layers (set STRATUS_SAGEMAKER_INSTANCE_TYPES' finetune to a g5/g6/p4d/p5 type)"
            )
    return None


def progress_view(job: Mapping[str, Any]) -> dict[str, Any]:
    """Training's progress fields, plus the throughput a fine-tune reports."""
    return {**training.progress_view(job), "tokens_per_s": (job.get("metrics") or {}).get("tokens_per_s")}


def _registry_fields(job: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    info = dict(detail.get("model") or {})
    return {
        "name": job.get("model_name"),
        "name_key": str(job.get("model_name") or "").lower(),
        "source": FINETUNED,
        "status": "ready",
        "model_type": "causal-lm",
        "tasks": ["generation"],
        "base_model": job.get("base_model"),
        "architecture": info.get("architecture") or {},
        "files": list(info.get("files") or []),
        "size_mb": info.get("size_mb"),
        "artifacts": dict(detail.get("artifacts") or {}),
        "dataset_id": job.get("dataset_id"),
    }


async def register_adapter(models: Any, job: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    """The adapter as a registry model (idempotent per job): served on its base, never merged."""
    params = job.get("params") or {}
    fields = _registry_fields(job, detail) | {
        "adapter": True,
        "method": params.get("method"),
        "base": params.get("base"),
        "training_config": dict(params.get("hyperparameters") or {}),
        "loss": (detail.get("final_metrics") or {}).get("train_loss"),
    }
    model: dict[str, Any] = await models.register_for_job(job["user_id"], job["_id"], fields)
    # The checkpoints too, on the same base; their files are the final adapter's file names.
    await register_checkpoints(models, job, dict(detail.get("artifacts") or {}), fields["files"] or None)
    return model


def checkpoint_steps(artifacts: Mapping[str, Any]) -> list[int]:
    """The steps of the checkpoints a fine-tune saved (artifacts `checkpoint_step_<n>`), in order."""
    return sorted(int(k.rsplit("_", 1)[-1]) for k in artifacts if k.startswith("checkpoint_step_"))


def checkpoint_name(model_name: str, step: int) -> str:
    return f"{model_name}-step-{step}"


async def register_checkpoints(
    models: Any, job: Mapping[str, Any], artifacts: Mapping[str, Any], files: list[str] | None = None
) -> list[dict[str, Any]]:
    """Each checkpoint as a registry model `<model_name>-step-<n>` (idempotent): an adapter on the same
    base as the job's final one, served and merged the same way."""
    params = job.get("params") or {}
    registered = []
    for step in checkpoint_steps(artifacts):
        name = checkpoint_name(str(job.get("model_name")), step)
        fields = {
            "name": name,
            "name_key": name.lower(),
            "source": FINETUNED,
            "status": "ready",
            "model_type": "causal-lm",
            "tasks": ["generation"],
            "base_model": job.get("base_model"),
            "architecture": {"class": None, "adapter": "lora", "checkpoint": step},
            "files": list(files or ADAPTER_FILES),
            "artifacts": {"adapter": artifacts[f"checkpoint_step_{step}"]},
            "dataset_id": job.get("dataset_id"),
            "adapter": True,
            "method": params.get("method"),
            "base": params.get("base"),
            "training_config": dict(params.get("hyperparameters") or {}),
        }
        registered.append(await models.register_checkpoint(job["user_id"], job["_id"], step, fields))
    return registered


async def register_merged(models: Any, job: Mapping[str, Any], detail: Mapping[str, Any]) -> dict[str, Any]:
    fields = _registry_fields(job, detail) | {
        "adapter": False,
        "merged_from": (job.get("params") or {}).get("adapter_model_id"),
        "revision": str(job["_id"]),
    }
    model: dict[str, Any] = await models.register_for_job(job["user_id"], job["_id"], fields)
    return model


def serving_source(model: Mapping[str, Any]) -> dict[str, Any]:
    """Where the inference worker finds a fine-tuned model: an adapter is served on its base, unmerged
    (stratus_worker.inference.adapters); a merged model like a downloaded causal LM."""
    artifacts = model.get("artifacts") or {}
    source: dict[str, Any] = {
        "snapshot": artifacts.get("adapter") or artifacts.get("snapshot"),
        "files": list(model.get("files") or []),
        "architecture": (model.get("architecture") or {}).get("class"),
        "model_type": model.get("model_type"),
        "revision": str(model.get("job_id") or model.get("_id")),
        "serving": "hub-causal-lm",
    }
    if model.get("adapter"):
        source["adapter"] = {"base": model.get("base")}
    return source


# A GPU is what these are for (SageMaker/Batch pick the GPU instance or queue); the local worker trains
# on the CPU, as the notes say QLoRA also does with bitsandbytes 0.50.
KIND = JobKind(
    name=FINETUNE,
    worker="stratus_worker.finetune",
    resources=Resources(gpu=True, memory_mb=32_768, max_runtime_s=24 * 3600),
    webhooks=JobWebhooks(
        started="finetune.started",
        progress="finetune.progress",
        completed="finetune.completed",
        failed="finetune.failed",
    ),
    register_result=register_adapter,
    progress_view=progress_view,
    completed_view=lambda job, metrics: {"train_loss": metrics.get("train_loss")},
    webhook_fields=lambda job: {"model_name": job.get("model_name")},
)

MERGE_KIND = JobKind(
    name=MERGE,
    worker="stratus_worker.finetune.merge",
    resources=Resources(gpu=True, memory_mb=32_768, max_runtime_s=2 * 3600),
    webhooks=JobWebhooks(completed="finetune.merged", failed="finetune.merge_failed"),
    register_result=register_merged,
    progress_view=progress_view,
    webhook_fields=lambda job: {"model_name": job.get("model_name")},
)
