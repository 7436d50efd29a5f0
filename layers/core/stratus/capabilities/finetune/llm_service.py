"""Seed 002's LLM fine-tuning: LoRA/QLoRA jobs on the pipeline (kind `finetune`, managed by the
platform), testing a finished adapter on the inference worker, and merging it into a new model.

Before a job is queued its dataset is read and checked here, with the same parser the worker uses:
bad examples are refused with their line numbers (a 422 naming each), the examples are counted with the
base model's own tokenizer and chat template (tokens.py: the `tokenizers` library and Jinja2, never
transformers, which an API Lambda does not import) into min/mean/p95/max tokens per example and how many
max_length cuts, and the answer carries the estimate (tokens, steps, time). Only a base without a
tokenizer.json falls back to a characters/4 estimate (the answer's `estimate.method` says which); the
worker then counts exactly before training and reports the same statistics in its first event.
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

from bson import ObjectId

from stratus.capabilities.finetune import examples, spec, tokens
from stratus.capabilities.finetune.llm_schemas import AdapterTest, LoraStart, MergeStart
from stratus.capabilities.training.service import TrainingService
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from stratus.jobs.service import JobService
from stratus.ml import catalogue
from stratus.ports.inference import InferenceBackend, InferencePending, InferenceRequest
from stratus.ports.storage import ObjectStorage

FORMATS = ("jsonl", "json", "csv")
TEST_WAIT_S = 25.0


def registry_name(reference: str | None, fallback: str) -> str:
    """Seed 002 sends paths ("/models/lora_adapter"): the registry name is the last part."""
    name = (reference or "").rstrip("/").rsplit("/", 1)[-1].strip()
    return name or fallback


def _field_error(field: str, message: str, code: str) -> ValidationFailed:
    return ValidationFailed(message, code=code, details=[{"field": field, "message": message}])


class LLMFineTuneService:
    def __init__(
        self,
        *,
        jobs: JobService,
        training: TrainingService,
        datasets: DatasetRepository,
        models: ModelRepository,
        storage: ObjectStorage,
        inference: InferenceBackend,
        four_bit_refusal: str | None = None,
    ) -> None:
        self._jobs = jobs
        self._training = training
        self._datasets = datasets
        self._models = models
        self._storage = storage
        self._inference = inference
        self._four_bit_refusal = four_bit_refusal  # why QLoRA cannot run here (spec.four_bit_refusal)

    # --- starting -------------------------------------------------------------------------------

    async def start(
        self, user_id: ObjectId, body: LoraStart, *, method: str, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        if method == "qlora" and self._four_bit_refusal:
            raise ValidationFailed(
                f"QLoRA cannot run on this deployment: {self._four_bit_refusal}; use /lora/start (a full "
                "precision base) instead",
                code="QLORA_UNAVAILABLE",
            )
        dataset_id = await self._training.resolve_dataset(user_id, body.dataset_path)
        dataset = await self._datasets.require_owned(user_id, ObjectId(dataset_id))
        if dataset["status"] != "ready":
            raise Conflict(f"Dataset is not ready (status: {dataset['status']})", code="DATASET_NOT_READY")
        base = await self.resolve_base(user_id, body.base_model)
        parsed = await self._read_examples(dataset)
        validation = await self._validation(user_id, body.validation_dataset)
        estimate = await self.estimate(parsed.examples, body, base, held_out=validation is None)
        name = registry_name(body.output_dir, f"{base['name'].rsplit('/', 1)[-1]}-{method}-{dataset['name']}")
        hp = body.model_dump(exclude={"base_model", "dataset_path", "output_dir", "validation_dataset"})
        doc: dict[str, Any] = {
            "user_id": user_id,
            "kind": spec.FINETUNE,
            "managed_by": spec.MANAGED_BY_PLATFORM,
            "method": method,
            "dataset_id": dataset["_id"],
            "base_model": base["name"],
            "model_name": name,
            "params": {
                "method": method,
                "base": base,
                "dataset_key": dataset["object_key"],
                "dataset_format": dataset["format"],
                "hyperparameters": hp,
                **(
                    {"validation_key": validation["object_key"], "validation_format": validation["format"]}
                    if validation is not None
                    else {}
                ),
            },
            "progress": 0.0,
            "current_epoch": 0,
            "total_epochs": body.epochs,
            "total_steps": estimate["steps"],
            "metrics": {},
            "estimate": estimate,
            "estimated_time": estimate["seconds"],
        }
        return await self._jobs.create(doc, idempotency_key=idempotency_key)

    async def resolve_base(self, user_id: ObjectId, name: str) -> dict[str, Any]:
        """The worker's description of a trainable base: a built-in causal LM, or one the user downloaded
        (its snapshot in storage). Anything else is a 422 that lists the trainable models."""
        builtin = catalogue.find(name)
        if builtin is not None and builtin.model_type == "causal-lm":
            return {"name": builtin.name}
        record = await self._models.find_named(user_id, name, source="hub")
        serving = (
            catalogue.downloaded_serving(
                (record.get("architecture") or {}).get("class"), record.get("model_type")
            )
            if record is not None and record.get("status") == "ready"
            else None
        )
        if record is not None and serving is not None and serving[0] == "hub-causal-lm":
            return {
                "name": record["name"],
                "snapshot": (record.get("artifacts") or {}).get("snapshot"),
                "files": list(record.get("files") or []),
                "architecture": (record.get("architecture") or {}).get("class"),
                "revision": record.get("revision"),
            }
        trainable = [m.name for m in catalogue.BUILTIN_MODELS if m.model_type == "causal-lm"]
        downloaded = await self._models.names(user_id, source="hub", task="generation")
        listed = ", ".join([*trainable, *downloaded])
        raise _field_error(
            "base_model",
            f"Base model '{name}' cannot be fine-tuned; trainable models: {listed} "
            "(download another causal LM with POST /models/download first)",
            "UNKNOWN_BASE_MODEL",
        )

    async def _validation(self, user_id: ObjectId, reference: str | None) -> dict[str, Any] | None:
        """The validation dataset named by the request (checked like the training set), or None."""
        if reference is None:
            return None
        dataset_id = await self._training.resolve_dataset(user_id, reference)
        dataset = await self._datasets.require_owned(user_id, ObjectId(dataset_id))
        if dataset["status"] != "ready":
            raise Conflict(
                f"Validation dataset is not ready (status: {dataset['status']})", code="DATASET_NOT_READY"
            )
        await self._read_examples(dataset, field="validation_dataset")
        return dataset

    async def _read_examples(
        self, dataset: dict[str, Any], field: str = "dataset_path"
    ) -> examples.ParsedExamples:
        fmt = str(dataset.get("format"))
        if fmt not in FORMATS:
            raise _field_error(
                field,
                f"Fine-tuning reads JSON Lines, JSON or CSV datasets; this one is {fmt}",
                "BAD_FORMAT",
            )
        if int(dataset.get("file_size") or 0) > spec.MAX_DATASET_BYTES:
            raise _field_error(field, "The dataset is larger than fine-tuning reads (200 MB)", "TOO_LARGE")
        parsed = examples.parse(await self._storage.get_bytes(dataset["object_key"]), fmt)
        if parsed.errors:
            details = [{"field": field, "line": line, "message": why} for line, why in parsed.errors[:50]]
            raise ValidationFailed(
                f"The dataset '{dataset['name']}' has {len(parsed.errors)} bad example(s): {parsed.summary()}",
                code="INVALID_EXAMPLES",
                details=details,
            )
        if not parsed.examples:
            raise _field_error(field, "The dataset has no examples", "NO_EXAMPLES")
        if len(parsed.examples) > spec.MAX_EXAMPLES:
            raise _field_error(field, f"More than {spec.MAX_EXAMPLES} examples", "TOO_MANY_EXAMPLES")
        return parsed

    async def token_counter(self, base: dict[str, Any]) -> tokens.TokenCounter | None:
        """The base model's own tokenizer and chat template (tokens.py), or None when it has no
        tokenizer.json to count with here (then the worker counts before training)."""
        if not base.get("snapshot"):
            files = await asyncio.to_thread(tokens.shipped, str(base["name"]))
            return None if files is None else await asyncio.to_thread(tokens.TokenCounter, files)
        wanted = tokens.snapshot_files(list(base.get("files") or []))
        if wanted is None:
            return None
        prefix = str(base["snapshot"]).rstrip("/")
        info = await self._storage.head(f"{prefix}/{wanted['tokenizer']}")
        if info is None or info.size > tokens.MAX_TOKENIZER_BYTES:
            return None
        read = {key: await self._storage.get_bytes(f"{prefix}/{name}") for key, name in wanted.items()}
        files = tokens.from_files(read["tokenizer"], read.get("config"), read.get("template"))
        return await asyncio.to_thread(tokens.TokenCounter, files)

    async def estimate(
        self, items: list[examples.Messages], body: LoraStart, base: dict[str, Any], *, held_out: bool
    ) -> dict[str, Any]:
        """Token statistics of the training examples (those left after the validation split) with the
        base model's tokenizer and chat template, and the steps and time they make. A dataset none of
        whose examples keeps any of its answer within max_length is refused here."""
        train = examples.held_out(items, body.validation_split, body.seed)[0] if held_out else items
        n = len(train)
        counter = await self.token_counter(base)
        if counter is not None:
            stats = await asyncio.to_thread(tokens.statistics, counter, train, body.max_length)
            method = "exact: the base model's tokenizer and chat template" + (
                f" (a sample of {stats['sampled']} examples, totals scaled)" if stats["sampled"] else ""
            )
            if not counter.has_template:
                method += "; the base has no chat template: the turns as plain text"
        else:
            stats = self.char_statistics(train, body.max_length)
            method = (
                "estimated: characters / 4 (the base has no tokenizer.json to count with at the API; the "
                "worker counts exactly before training and reports it in its first event)"
            )
        if stats["no_answer_within_max_length"] >= n:
            raise _field_error(
                "max_length",
                f"No example keeps any of its answer within max_length={body.max_length} tokens "
                f"(the shortest is {stats['min']} tokens); raise max_length",
                "NO_ANSWER_WITHIN_MAX_LENGTH",
            )
        usable = n - int(stats["no_answer_within_max_length"])
        per_epoch = math.ceil(math.ceil(usable / body.batch_size) / body.gradient_accumulation_steps)
        steps = per_epoch * body.epochs
        if body.max_steps:
            steps = min(steps, body.max_steps)
        epochs_run = steps / per_epoch
        trained_tokens = round(stats["total"] * epochs_run)
        return {
            "examples": n,
            "validation_examples": len(items) - n if held_out else None,
            "estimated_tokens": trained_tokens,
            "tokens_per_example": {k: stats[k] for k in ("min", "mean", "p95", "max")},
            "truncated": stats["truncated"],
            "likely_truncated": stats["truncated"],  # the name of the first release
            "skipped_no_answer": stats["no_answer_within_max_length"],
            "steps": steps,
            "steps_per_epoch": per_epoch,
            "seconds": max(10, int(trained_tokens / spec.ESTIMATE_TOKENS_PER_S)),
            "seconds_basis": f"{spec.ESTIMATE_TOKENS_PER_S:,} tokens/s (a small GPU); the job's events give "
            "the real tokens/s",
            "method": method,
        }

    @staticmethod
    def char_statistics(items: list[examples.Messages], max_length: int) -> dict[str, Any]:
        """The estimate without a tokenizer: ~4 characters a token, plus the template's few tokens."""
        chars = examples.chars_per_example(items)
        lengths = sorted(math.ceil(c / spec.CHARS_PER_TOKEN) + 8 for c in chars)
        n = len(lengths)
        return {
            "min": lengths[0],
            "mean": round(sum(lengths) / n, 1),
            "p95": lengths[min(n - 1, math.ceil(0.95 * n) - 1)],
            "max": lengths[-1],
            "total": sum(min(x, max_length) for x in lengths),
            "truncated": sum(1 for x in lengths if x > max_length),
            "no_answer_within_max_length": 0,
            "sampled": None,
        }

    # --- using the result -----------------------------------------------------------------------

    async def _job(self, user_id: ObjectId, task_id: str) -> dict[str, Any]:
        job = await self._jobs.get(user_id, ObjectId(task_id))
        if job.get("kind") != spec.FINETUNE or job.get("managed_by") != spec.MANAGED_BY_PLATFORM:
            raise NotFound("Fine-tuning job not found")
        return job

    async def _finished(
        self, user_id: ObjectId, task_id: str, checkpoint: int | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The job and the registry model of its final adapter, or of its checkpoint at step
        `checkpoint` (usable whatever the job's end: a stopped job's checkpoints are too)."""
        job = await self._job(user_id, task_id)
        if checkpoint is not None:
            artifacts = job.get("artifacts") or {}
            key = f"checkpoint_step_{checkpoint}"
            if key not in artifacts:
                saved = ", ".join(map(str, spec.checkpoint_steps(artifacts))) or "none yet"
                raise NotFound(f"The job has no checkpoint at step {checkpoint} (saved: {saved})")
            [model] = await spec.register_checkpoints(self._models, job, {key: artifacts[key]})
            return job, model
        if job["status"] != "completed" or not job.get("model_id"):
            raise Conflict(
                f"The fine-tuning job has not completed (status: {job['status']}); "
                "a checkpoint it saved can be named with `checkpoint`",
                code="JOB_NOT_COMPLETED",
            )
        final = await self._models.get_owned(user_id, job["model_id"])
        if final is None:
            raise NotFound("The fine-tuned adapter was deleted")
        return job, final

    async def checkpoints(self, user_id: ObjectId, task_id: str) -> dict[str, Any]:
        """The adapter checkpoints a fine-tune saved (every save_steps, on stop, on a diverging loss), each
        a registry model `<model_name>-step-<n>` (registered when the job completes; a stopped or failed
        job's when they are listed here or named by /test or /merge), with the eval loss of that step
        when there was one, and the final adapter's model. Storage keys are not shown: models are named."""
        job = await self._job(user_id, task_id)
        artifacts = job.get("artifacts") or {}
        # An idempotent upsert: a completed job's already exist; a stopped or failed job's appear here.
        registered = {
            int(m["checkpoint_step"]): m
            for m in await spec.register_checkpoints(self._models, job, artifacts)
        }
        history = job.get("history") or {}
        evals = dict(zip(history.get("eval_step") or [], history.get("eval_loss") or [], strict=False))
        final = await self._models.get_owned(user_id, job["model_id"]) if job.get("model_id") else None
        return {
            "task_id": task_id,
            "status": job["status"],
            "checkpoints": [
                {
                    "step": step,
                    "model": spec.checkpoint_name(str(job["model_name"]), step),
                    "model_id": str(registered[step]["_id"]) if step in registered else None,
                    "eval_loss": evals.get(float(step)),
                }
                for step in spec.checkpoint_steps(artifacts)
            ],
            "adapter": {"model": final["name"], "model_id": str(final["_id"])} if final else None,
        }

    async def test(self, user_id: ObjectId, body: AdapterTest) -> dict[str, Any]:
        job, model = await self._finished(user_id, body.task_id, body.checkpoint)
        request = InferenceRequest(
            task="generation",
            model=str(model["name"]),
            inputs=[{"prompt": body.prompt, "max_tokens": body.max_tokens, "temperature": body.temperature}],
            source=spec.serving_source(model),  # as /api/tasks and chat serve it by name
        )
        try:
            result = await self._inference.invoke(request, wait_s=TEST_WAIT_S)
        except InferencePending:
            # The first request for a base loads it (and the adapter) on the worker, which can outlast an
            # API request; the load goes on, so a retry finds the model ready.
            raise ServiceUnavailable(
                f"'{model['name']}' is still loading on the inference worker (its base model loads on first "
                "use); retry in a few seconds",
                code="MODEL_LOADING",
            ) from None
        return {
            "response": str(result.outputs[0].get("text", "")),
            "model": model["name"],
            "base_model": job["base_model"],
        }

    async def merge(
        self, user_id: ObjectId, body: MergeStart, *, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        job, model = await self._finished(user_id, body.task_id, body.checkpoint)
        source = spec.serving_source(model)
        doc: dict[str, Any] = {
            "user_id": user_id,
            "kind": spec.MERGE,
            "managed_by": spec.MANAGED_BY_PLATFORM,
            "base_model": job["base_model"],
            "dataset_id": job.get("dataset_id"),
            "model_name": registry_name(body.output_path, f"{model['name']}-merged"),
            "params": {
                "base": source["adapter"]["base"],
                "adapter": {"snapshot": source["snapshot"], "files": source["files"]},
                "adapter_model_id": str(model["_id"]),
            },
            "progress": 0.0,
            "metrics": {},
        }
        return await self._jobs.create(doc, idempotency_key=idempotency_key)
