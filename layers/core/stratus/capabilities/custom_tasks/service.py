"""Custom tasks: CRUD, export/import, stats, and runs of user code in the inference worker's sandbox.

A run is an inference task (stratus.capabilities.nlp.service.TaskService.submit) of task `custom`: it
answers inline within `Prefer: wait=N` or as a 202 followed at GET /api/tasks/{id} and /ws/tasks/{id},
and its record keeps the sandbox's isolation report. The code never runs in the API process. At most
`max_concurrent` runs per user are in flight; beyond that, 429 with Retry-After.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
from typing import TYPE_CHECKING, Any

from bson import ObjectId
from pydantic import ValidationError

from stratus.capabilities.custom_tasks import spec
from stratus.capabilities.custom_tasks.repository import (
    CustomRunStats,
    CustomTaskRepository,
    RunSlotRepository,
)
from stratus.capabilities.custom_tasks.schemas import CustomTaskCreate
from stratus.db.repositories.models import ModelRepository
from stratus.errors import DomainError, InvalidInput, NotFound, PayloadTooLarge, RateLimited
from stratus.ports.inference import InferenceBackend, InferenceRequest
from stratus.schemas.common import utcnow

if TYPE_CHECKING:
    from stratus.capabilities.nlp.service import TaskService


class CustomTaskService:
    def __init__(
        self,
        repo: CustomTaskRepository,
        slots: RunSlotRepository,
        stats: CustomRunStats,
        tasks: TaskService,
        models: ModelRepository,
        *,
        backend: InferenceBackend,
        max_concurrent: int,
        timeout_s: float,
    ) -> None:
        self._repo = repo
        self._slots = slots
        self._stats = stats
        self._tasks = tasks
        self._models = models
        self._backend = backend  # the sandbox's (AWS: the network-isolated endpoint)
        self.max_concurrent = max_concurrent
        self.timeout_s = timeout_s
        self._background: set[asyncio.Task[None]] = set()

    # --- runs ---------------------------------------------------------------------------------

    async def run_code(
        self,
        user_id: ObjectId,
        *,
        tokenizer_code: str,
        model_code: str,
        function_code: str,
        input_text: str,
        wait_s: float | None,
        task: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        run_id = ObjectId()
        # The slot lives at most as long as the run can: the sandbox's wall-clock limit, plus slack.
        if not await self._slots.acquire(
            user_id, run_id, limit=self.max_concurrent, ttl_s=self.timeout_s + self._tasks.max_wait_s + 30
        ):
            raise RateLimited(
                f"At most {self.max_concurrent} custom task executions may run at once; retry when one ends",
                retry_after=await self._retry_after(user_id),
                code="TOO_MANY_EXECUTIONS",
            )
        try:
            code = tokenizer_code + "\n" + model_code + "\n" + function_code
            sources = await self._model_sources(user_id, code)
            request = InferenceRequest(
                task=spec.TASK,
                model=(task or {}).get("model_name") or spec.DEFAULT_MODEL,
                inputs=[
                    {
                        "tokenizer_code": tokenizer_code,
                        "model_code": model_code,
                        "function_code": function_code,
                        "input_text": input_text,
                    }
                ],
                options={"timeout_s": self.timeout_s},
                source={"models": sources} if sources else None,
            )
            extra = {"custom_task_id": task["_id"]} if task else {}
            record = await self._tasks.submit(
                user_id, request, wait_s=wait_s, extra=extra, record_id=run_id, backend=self._backend
            )
        except BaseException:
            await self._slots.release(user_id, run_id)
            raise
        if record["status"] == "pending":
            self._release_when_done(user_id, run_id)
        else:
            await self._slots.release(user_id, run_id)
        if task is not None:
            await self._repo.count_run(task["_id"])
        return record

    async def run_saved(
        self, user_id: ObjectId, task_id: ObjectId, input_text: str, *, wait_s: float | None
    ) -> dict[str, Any]:
        task = await self.get(user_id, task_id)
        return await self.run_code(
            user_id,
            tokenizer_code=task.get("tokenizer_code") or "",
            model_code=task.get("model_code") or "",
            function_code=task["function_code"],
            input_text=input_text,
            wait_s=wait_s,
            task=task,
        )

    async def _retry_after(self, user_id: ObjectId) -> int:
        """A hint: runs usually end within seconds; never later than the first slot's expiry."""
        expiry = await self._slots.next_expiry(user_id)
        if expiry is None:
            return 1
        return max(1, min(5, math.ceil((expiry - utcnow()).total_seconds())))

    def _release_when_done(self, user_id: ObjectId, run_id: ObjectId) -> None:
        """A pending run keeps its slot until its record is finished (the local runtime follows it);
        where nothing follows it (a Lambda), the slot's lease expires."""

        async def follow() -> None:
            deadline = asyncio.get_running_loop().time() + self.timeout_s + 30
            with contextlib.suppress(DomainError):
                while asyncio.get_running_loop().time() < deadline:
                    record = await self._stats.collection.find_one({"_id": run_id}, {"status": 1})
                    if record is not None and record.get("status") != "pending":
                        break
                    await asyncio.sleep(0.25)
                await self._slots.release(user_id, run_id)

        task = asyncio.create_task(follow())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _model_sources(self, user_id: ObjectId, code: str) -> list[dict[str, Any]]:
        """The user's downloaded models that the code names: the worker maps them (read-only) into
        the sandbox's offline hub cache, so from_pretrained(name) finds them."""
        sources = []
        for name in await self._models.names(user_id, source="hub"):
            if name not in code:
                continue
            record = await self._models.find_named(user_id, name, source="hub")
            snapshot = ((record or {}).get("artifacts") or {}).get("snapshot")
            if record is None or not snapshot:
                continue
            sources.append({"name": record["name"], "snapshot": snapshot,
                            "files": list(record.get("files") or []), "revision": record.get("revision")})  # fmt: skip
        return sources

    # --- saved tasks ------------------------------------------------------------------------------

    async def create(self, user_id: ObjectId, fields: dict[str, Any]) -> dict[str, Any]:
        return await self._repo.create(user_id, fields)

    async def get(self, user_id: ObjectId, task_id: ObjectId) -> dict[str, Any]:
        task = await self._repo.get_owned(user_id, task_id)
        if task is None:
            raise NotFound("Custom task not found")
        return task

    async def search(
        self,
        user_id: ObjectId,
        *,
        search: str | None,
        tags: list[str],
        model: str | None,
        limit: int,
        offset: int,
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._repo.search(
            user_id, search=search, tags=tags, model=model, limit=limit, offset=offset
        )

    async def update(self, user_id: ObjectId, task_id: ObjectId, changes: dict[str, Any]) -> dict[str, Any]:
        if not changes:
            return await self.get(user_id, task_id)
        task = await self._repo.update(user_id, task_id, changes)
        if task is None:
            raise NotFound("Custom task not found")
        return task

    async def delete(self, user_id: ObjectId, task_id: ObjectId) -> None:
        if not await self._repo.delete(user_id, task_id):
            raise NotFound("Custom task not found")

    # --- export / import --------------------------------------------------------------------------

    async def export(self, user_id: ObjectId, task_ids: list[ObjectId]) -> dict[str, Any]:
        found = {doc["_id"]: doc for doc in await self._repo.get_many(user_id, task_ids)}
        missing = [str(i) for i in task_ids if i not in found]
        if missing:
            raise NotFound("Custom tasks not found: " + ", ".join(missing), details={"missing": missing})
        return {
            "format": spec.EXPORT_FORMAT,
            "version": spec.EXPORT_VERSION,
            "exported_at": utcnow().isoformat(),
            "tasks": [
                {name: found[i].get(name) for name in spec.PORTABLE_FIELDS} for i in dict.fromkeys(task_ids)
            ],
        }

    async def import_file(self, user_id: ObjectId, data: bytes) -> dict[str, Any]:
        """Validate an export file and save each valid task; say which were refused and why."""
        if len(data) > spec.MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"An import file may be at most {spec.MAX_IMPORT_BYTES} bytes")
        try:
            document = json.loads(data)
        except (ValueError, UnicodeDecodeError) as e:
            raise InvalidInput(f"The file is not JSON: {e}", code="INVALID_IMPORT") from e
        if not isinstance(document, dict) or document.get("format") != spec.EXPORT_FORMAT:
            raise InvalidInput(
                f"Not a custom task export (format must be {spec.EXPORT_FORMAT!r})", code="INVALID_IMPORT"
            )
        version = document.get("version")
        if not isinstance(version, int) or not 1 <= version <= spec.EXPORT_VERSION:
            raise InvalidInput(
                f"Unsupported export version {version!r}; this server reads versions 1 to {spec.EXPORT_VERSION}",
                code="UNSUPPORTED_VERSION",
            )
        items = document.get("tasks")
        if not isinstance(items, list) or len(items) > spec.MAX_EXPORT_TASKS:
            raise InvalidInput(
                f"'tasks' must be a list of at most {spec.MAX_EXPORT_TASKS} tasks", code="INVALID_IMPORT"
            )
        existing = await self._repo.names(user_id)
        imported: list[dict[str, Any]] = []
        refused: list[dict[str, Any]] = []
        for index, item in enumerate(items):
            name = item.get("name") if isinstance(item, dict) and isinstance(item.get("name"), str) else None
            if not isinstance(item, dict):
                refused.append({"index": index, "name": None, "reason": "not an object"})
                continue
            try:
                task = CustomTaskCreate.model_validate(
                    {
                        key: value
                        for key, value in item.items()
                        if key in spec.PORTABLE_FIELDS and value is not None
                    }
                )
            except ValidationError as e:
                reasons = "; ".join(
                    f"{'.'.join(map(str, err['loc'])) or 'task'}: {err['msg']}" for err in e.errors()
                )
                refused.append({"index": index, "name": name, "reason": reasons})
                continue
            unknown = sorted(set(item) - set(spec.PORTABLE_FIELDS))
            if unknown:
                refused.append(
                    {"index": index, "name": name, "reason": f"unknown fields: {', '.join(unknown)}"}
                )
                continue
            if task.name.lower() in existing:
                refused.append({"index": index, "name": task.name, "reason": "a task with this name exists"})
                continue
            doc = await self._repo.create(user_id, task.model_dump())
            existing.add(task.name.lower())
            imported.append({"index": index, "name": task.name, "id": str(doc["_id"])})
        return {"imported": imported, "refused": refused, "imported_count": len(imported),
                "refused_count": len(refused)}  # fmt: skip

    # --- stats ------------------------------------------------------------------------------------

    async def stats(self, user_id: ObjectId) -> dict[str, Any]:
        facets = await self._repo.facets(user_id)
        runs = await self._stats.summary(user_id, spec.TASK)
        finished = runs["completed"] + runs["failed"]
        mean = runs["mean_duration_ms"]
        return {
            "total_tasks": facets["total"],
            "by_tag": facets["by_tag"],
            "by_model": facets["by_model"],
            "saved_task_runs": facets["saved_task_runs"],
            **{key: runs[key] for key in ("runs", "completed", "failed", "pending")},
            "success_rate": round(runs["completed"] / finished, 4) if finished else None,
            "mean_duration_ms": round(mean, 3) if isinstance(mean, int | float) else None,
            "failure_reasons": await self._stats.failure_reasons(user_id, spec.TASK),
            "window_days": 7,
        }
