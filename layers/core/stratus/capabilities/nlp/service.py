"""NLP tasks on warm workers: validate, count against the quota, run, and answer inline or later.

Like Replicate's API: the request waits up to `Prefer: wait=N` seconds (a default otherwise) and
returns the result inline; past that, or with `Prefer: respond-async`, it answers 202 with a task id
and the result is read from GET /api/tasks/{id} or pushed on the WebSocket (/ws/tasks/{id}).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from typing import Any, Protocol

from bson import ObjectId

from stratus.capabilities.custom_tasks import spec as custom_tasks
from stratus.capabilities.finetune import spec as finetune
from stratus.db.repositories.models import ModelRepository
from stratus.db.repositories.tasks import TaskRepository
from stratus.errors import DomainError, NotFound, ValidationFailed
from stratus.ml import catalogue
from stratus.ports.inference import InferenceBackend, InferencePending, InferenceRequest, InferenceResult
from stratus.schemas.common import utcnow
from stratus.services.quota import QuotaService

log = logging.getLogger(__name__)


def default_model(task: str) -> str:
    """The task's default: the first built-in model that serves it. Looked up per request, so a task
    with no built-in model answers a clear 422 instead of breaking the API's import."""
    builtin = catalogue.for_task(task)
    if not builtin:
        raise ValidationFailed(
            f"There is no built-in model for {task}; name one in model_name (POST /models/download "
            "fetches one from the hub)",
            code="MODEL_REQUIRED",
            details=[{"field": "model_name", "message": f"required for {task}"}],
        )
    return builtin[0].name


class Push(Protocol):
    async def push(self, job_id: str, message: dict[str, Any]) -> int: ...


class TaskService:
    def __init__(
        self,
        tasks: TaskRepository,
        backend: InferenceBackend,
        quota: QuotaService,
        live: Push | None,
        *,
        default_wait_s: float,
        max_wait_s: float,
        models: ModelRepository | None = None,
    ) -> None:
        self._tasks = tasks
        self._models = models
        self._backend = backend
        self._quota = quota
        self._live = live
        self.default_wait_s = default_wait_s
        self.max_wait_s = max_wait_s
        self._background: set[asyncio.Task[None]] = set()

    async def run(
        self,
        user_id: ObjectId,
        task: str,
        model_name: str | None,
        inputs: list[dict[str, Any]],
        options: dict[str, Any],
        *,
        wait_s: float | None,
        single: bool = True,
    ) -> dict[str, Any]:
        model, source = await self.resolve(user_id, task, model_name)
        if source is not None and source["serving"] == "hub-sequence-classifier":
            _refuse_candidate_labels(model, inputs)
        request = InferenceRequest(task=task, model=model, inputs=inputs, options=options, source=source)
        return await self.submit(user_id, request, wait_s=wait_s, single=single)

    async def submit(
        self,
        user_id: ObjectId,
        request: InferenceRequest,
        *,
        wait_s: float | None,
        single: bool = True,
        extra: dict[str, Any] | None = None,
        record_id: ObjectId | None = None,
        backend: InferenceBackend | None = None,
    ) -> dict[str, Any]:
        """Run a resolved request as a task: answered within the wait, or pending (202) and finished
        in the background. `extra` is stored with the record (a custom task's id); `backend` invokes
        it instead of the tasks' own (custom tasks' sandbox endpoint: a pending result is collected
        from storage, which both share)."""
        wait = self.default_wait_s if wait_s is None else min(max(wait_s, 0.0), self.max_wait_s)
        await self._quota.consume_query(user_id)
        # One write per task: the record is stored once its fate is known (answered, pending or
        # failed), which keeps a short task to a single database round trip after the quota.
        record: dict[str, Any] = {
            **(extra or {}),
            "_id": record_id or ObjectId(),
            "user_id": user_id,
            "task": request.task,
            "model": request.model,
            "single": single,
            "options": request.options,
            "created_at": utcnow(),
        }
        try:
            result = await (backend or self._backend).invoke(request, wait_s=wait)
        except InferencePending as pending:
            record = await self._tasks.insert(
                {**record, "status": "pending", "reference": pending.reference, "watch": list(pending.watch)}
            )
            self._follow(record, pending.reference)
            return record
        except DomainError as e:
            await self._tasks.insert(
                {**record, "status": "failed", "error": e.message, "completed_at": utcnow()}
            )
            raise
        return await self._tasks.insert({**record, **self._outcome(record, result), "completed_at": utcnow()})

    async def resolve(
        self, user_id: ObjectId, task: str, model_name: str | None
    ) -> tuple[str, dict[str, Any] | None]:
        """The model's name, and for one the user downloaded, where the worker finds its files."""
        if model_name is None or catalogue.find(model_name) is not None or self._models is None:
            return resolve_model(task, model_name), None
        tuned = await self._models.find_named(user_id, model_name, source=finetune.FINETUNED)
        if tuned is not None and tuned.get("status") == "ready" and task in (tuned.get("tasks") or []):
            return tuned["name"], finetune.serving_source(tuned)  # a LoRA adapter or a merged model
        record = await self._models.find_named(user_id, model_name, source="hub")
        if record is None or record.get("status") != "ready":
            downloaded = await self._models.names(user_id, source="hub", task=task)
            return resolve_model(task, model_name, downloaded=downloaded), None  # 404 listing them
        serving = catalogue.downloaded_serving(
            (record.get("architecture") or {}).get("class"), record.get("model_type")
        )
        tasks = record.get("tasks") or []
        if serving is None or task not in tasks:
            does = (
                f"it does: {', '.join(tasks)}"
                if tasks
                else "downloaded models of its architecture are not served yet"
            )
            raise ValidationFailed(
                f"Model '{record['name']}' does not do {task}; {does}",
                code="WRONG_TASK",
                details=[{"field": "model_name", "message": f"does not do {task}"}],
            )
        return record["name"], {
            "snapshot": (record.get("artifacts") or {}).get("snapshot"),
            "files": list(record.get("files") or []),
            "architecture": (record.get("architecture") or {}).get("class"),
            "model_type": record.get("model_type"),
            "max_sequence_length": record.get("max_sequence_length"),
            "revision": record.get("revision"),
            "serving": serving[0],
        }

    @staticmethod
    def _outcome(record: dict[str, Any], result: InferenceResult) -> dict[str, Any]:
        if record["task"] == custom_tasks.TASK:  # user code: completed or failed, with its isolation report
            return {**custom_tasks.outcome(result.outputs), "model": result.model}
        shaped = shape_result(
            record["task"],
            result.outputs,
            single=record.get("single", True),
            options=record.get("options") or {},
        )
        return {
            "status": "completed",
            "result": shaped,
            "model": result.model,
            "batch_size": result.batch_size,
        }

    async def _complete(self, record: dict[str, Any], result: InferenceResult) -> dict[str, Any]:
        """Finish a task that was pending."""
        outcome = self._outcome(record, result)
        done = await self._tasks.finish(record["_id"], outcome)
        return done or {**record, **outcome}

    def _follow(self, record: dict[str, Any], reference: str) -> None:
        """Finish a pending task in the background and tell WebSocket subscribers (local runtime)."""

        async def follow() -> None:
            while True:
                try:
                    result = await self._backend.collect(reference)
                except DomainError as e:
                    done = await self._tasks.finish(record["_id"], {"status": "failed", "error": e.message})
                    await self._notify(done, "error")
                    return
                if result is not None:
                    await self._notify(await self._complete(record, result), "status")
                    return
                await asyncio.sleep(0.1)

        task = asyncio.create_task(follow())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _notify(self, record: dict[str, Any] | None, kind: str) -> None:
        if record is None or self._live is None:
            return
        data = {"task_id": str(record["_id"]), "status": record["status"], "result": record.get("result"),
                "error": record.get("error")}  # fmt: skip
        with contextlib.suppress(DomainError):
            await self._live.push(str(record["_id"]), {"type": kind, "data": data})

    async def on_inference_result(self, key: str) -> bool:
        """A backend announced that the object `key` (an output or a failure) was written: finish the
        task waiting for it and tell its WebSocket subscribers. False when no pending task watches it
        (finished already by a read, or a duplicate notification)."""
        record = await self._tasks.pending_watching(key)
        if record is None:
            return False
        try:
            result = await self._backend.collect(record["reference"])
        except DomainError as e:
            await self._notify(
                await self._tasks.finish(record["_id"], {"status": "failed", "error": e.message}), "error"
            )
            return True
        if result is None:
            return False  # announced before it is readable: the next read or notification finishes it
        await self._notify(await self._complete(record, result), "status")
        return True

    async def get(self, user_id: ObjectId, task_id: ObjectId) -> dict[str, Any]:
        record = await self._tasks.get_owned(user_id, task_id)
        if record is None:
            raise NotFound("Task not found")
        if record["status"] == "pending" and record.get("reference"):
            # In AWS the result waits in S3: the first read after it lands completes the record.
            with contextlib.suppress(NotFound):
                result = await self._backend.collect(record["reference"])
                if result is not None:
                    return await self._complete(record, result)
        return record

    async def owns(self, user_id: ObjectId, task_id: str) -> bool:
        return (
            ObjectId.is_valid(task_id) and await self._tasks.get_owned(user_id, ObjectId(task_id)) is not None
        )


def _refuse_candidate_labels(model: str, inputs: list[dict[str, Any]]) -> None:
    if any(item.get("candidate_labels") for item in inputs):
        raise ValidationFailed(
            f"Model '{model}' has a trained classification head with its own labels; "
            "candidate_labels apply to zero-shot models only",
            code="FIXED_LABELS",
            details=[{"field": "candidate_labels", "message": "not accepted by this model"}],
        )


def resolve_model(task: str, model_name: str | None, *, downloaded: Sequence[str] = ()) -> str:
    """The canonical name of a built-in model that serves `task`: 404 if there is none by that name
    (listing the built-in and `downloaded` models that serve it), 422 if it does another task.
    Checked here so a bad request never reaches (or wakes) a worker."""
    if model_name is None:
        return default_model(task)
    entry = catalogue.find(model_name)
    if entry is None:
        available = [m.name for m in catalogue.for_task(task)] + list(downloaded)
        raise NotFound(
            f"Model '{model_name}' is not available; available for {task}: {', '.join(available)}",
            code="MODEL_NOT_FOUND",
            details={"available": available, "hint": "POST /models/download fetches a model from the hub"},
        )
    if task not in entry.tasks:
        raise ValidationFailed(
            f"Model '{entry.name}' does not do {task}; it does: {', '.join(entry.tasks)}",
            code="WRONG_TASK",
            details=[{"field": "model_name", "message": f"does not do {task}"}],
        )
    return entry.name


def shape_result(task: str, outputs: list[dict[str, Any]], *, single: bool, options: dict[str, Any]) -> Any:
    """Per-item worker outputs -> the response body's `result`."""
    if task == "embeddings":
        vectors = [o["embedding"] for o in outputs]
        dimension = int(outputs[0].get("dimension", len(vectors[0]))) if outputs else 0
        if single:
            return {
                "embedding": vectors[0],
                "dimension": dimension,
                "normalized": bool(options.get("normalize")),
            }
        return {"embeddings": vectors, "dimension": dimension, "count": len(vectors),
                "normalized": bool(options.get("normalize")) if outputs else False}  # fmt: skip
    output = dict(outputs[0]) if outputs else {}
    if task == "classification" and output.get("labels"):
        top = output["labels"][0]
        output.setdefault("label", top["label"])
        output.setdefault("score", top["score"])
    return output
