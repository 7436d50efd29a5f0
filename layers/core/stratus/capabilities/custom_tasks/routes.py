"""Seed 000's custom tasks: POST /tasks/custom (run code once), /custom-tasks (saved tasks: CRUD, search,
export, import, stats, run), each also under /api."""

from __future__ import annotations

import json
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Response, UploadFile, status

from stratus.api.deps import CustomTasks
from stratus.api.pagination import Pagination, set_total
from stratus.api.prefer import PreferHeader, wait_of
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.custom_tasks import spec
from stratus.capabilities.custom_tasks.schemas import (
    CustomRunRequest,
    CustomTaskCreate,
    CustomTaskPublic,
    CustomTaskStats,
    CustomTaskUpdate,
    ExportRequest,
    ImportReport,
    RunSavedRequest,
    public,
)
from stratus.capabilities.nlp.routes import respond
from stratus.capabilities.nlp.schemas import TaskResponse
from stratus.db.ids import ObjectIdStr, oid
from stratus.errors import PayloadTooLarge

_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": TaskResponse, "description": "Still running: follow GET /api/tasks/{task_id}"},
}  # 429 (the route class documents it): more executions in flight than the user may have, Retry-After


def build_run_router(prefix: str, *, include_in_schema: bool = True) -> APIRouter:
    router = APIRouter(
        prefix=prefix, tags=["custom tasks"], route_class=StratusRoute, dependencies=[RateLimit],
        include_in_schema=include_in_schema,
    )  # fmt: skip

    @router.post("/custom", response_model=TaskResponse, responses=_RUN_RESPONSES, name="custom_task")
    async def run_custom(
        body: CustomRunRequest,
        user: CurrentUser,
        custom: CustomTasks,
        response: Response,
        prefer: PreferHeader = None,
    ) -> dict[str, Any]:
        """Run `custom_function(input_text)` after the tokenizer and model code, in the inference worker's
        sandbox. `result` is its JSON return value; a run the sandbox stopped is `failed` with `reason`
        and `error`; `isolation` lists the sandbox layers that held it. A user may have 10 executions
        in flight; beyond that 429 with Retry-After."""
        record = await custom.run_code(
            user.user_id, tokenizer_code=body.tokenizer_code, model_code=body.model_code,
            function_code=body.function_code, input_text=body.input_text, wait_s=wait_of(prefer),
        )  # fmt: skip
        return respond(record, response)

    return router


def build_router(prefix: str, *, include_in_schema: bool = True) -> APIRouter:
    router = APIRouter(
        prefix=prefix, tags=["custom tasks"], route_class=StratusRoute, dependencies=[RateLimit],
        include_in_schema=include_in_schema,
    )  # fmt: skip

    @router.post("", status_code=status.HTTP_201_CREATED, response_model=CustomTaskPublic)
    async def create_task(body: CustomTaskCreate, user: CurrentUser, custom: CustomTasks) -> dict[str, Any]:
        return public(await custom.create(user.user_id, body.model_dump()))

    @router.get("", response_model=list[CustomTaskPublic])
    async def list_tasks(
        user: CurrentUser,
        custom: CustomTasks,
        page: Pagination,
        response: Response,
        search: Annotated[str | None, Query(max_length=200, description="In name or description")] = None,
        tags: Annotated[
            str | None, Query(max_length=1000, description="Comma-separated; all must match")
        ] = None,
        model: Annotated[str | None, Query(max_length=200)] = None,
    ) -> list[dict[str, Any]]:
        """Newest first; the total is in `X-Total-Count`."""
        wanted = [t.strip() for t in (tags or "").split(",") if t.strip()]
        items, total = await custom.search(
            user.user_id,
            search=search or None,
            tags=wanted,
            model=model or None,
            limit=page.limit,
            offset=page.offset,
        )
        set_total(response, total)
        return [public(item) for item in items]

    @router.post("/export", name="export_custom_tasks")
    async def export_tasks(body: ExportRequest, user: CurrentUser, custom: CustomTasks) -> Response:
        """A versioned JSON file of the tasks (name, description, tags, code, model), for /import."""
        ids = [oid(i, what="Custom task") for i in body.task_ids]
        document = await custom.export(user.user_id, ids)
        filename = f"custom-tasks-{document['exported_at'][:10]}.json"
        return Response(
            json.dumps(document, indent=2),
            media_type="application/json",
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    @router.post("/import", response_model=ImportReport)
    async def import_tasks(
        file: Annotated[UploadFile, File(description="An export file")],
        user: CurrentUser,
        custom: CustomTasks,
    ) -> dict[str, Any]:
        """Each task is validated like a create; the report lists what was imported and what was
        refused, and why (invalid fields, unknown fields, a name that exists)."""
        data = await file.read(spec.MAX_IMPORT_BYTES + 1)
        if len(data) > spec.MAX_IMPORT_BYTES:
            raise PayloadTooLarge(f"An import file may be at most {spec.MAX_IMPORT_BYTES} bytes")
        return await custom.import_file(user.user_id, data)

    @router.get("/stats", response_model=CustomTaskStats)
    async def task_stats(user: CurrentUser, custom: CustomTasks) -> dict[str, Any]:
        """Tasks by tag and model; runs of the last 7 days: success rate, mean duration, failure reasons."""
        return await custom.stats(user.user_id)

    @router.get("/{task_id}", response_model=CustomTaskPublic)
    async def get_task(task_id: ObjectIdStr, user: CurrentUser, custom: CustomTasks) -> dict[str, Any]:
        return public(await custom.get(user.user_id, oid(task_id, what="Custom task")))

    @router.put("/{task_id}", response_model=CustomTaskPublic)
    async def update_task(
        task_id: ObjectIdStr, body: CustomTaskUpdate, user: CurrentUser, custom: CustomTasks
    ) -> dict[str, Any]:
        changes = body.model_dump(exclude_unset=True)
        return public(await custom.update(user.user_id, oid(task_id, what="Custom task"), changes))

    @router.delete("/{task_id}", status_code=status.HTTP_204_NO_CONTENT)
    async def delete_task(task_id: ObjectIdStr, user: CurrentUser, custom: CustomTasks) -> None:
        await custom.delete(user.user_id, oid(task_id, what="Custom task"))

    @router.post("/{task_id}/run", response_model=TaskResponse, responses=_RUN_RESPONSES)
    async def run_task(
        task_id: ObjectIdStr,
        user: CurrentUser,
        custom: CustomTasks,
        response: Response,
        body: RunSavedRequest | None = None,
        prefer: PreferHeader = None,
    ) -> dict[str, Any]:
        """Run a saved task on `input_text` (like POST /tasks/custom)."""
        text = body.input_text if body is not None else ""
        record = await custom.run_saved(
            user.user_id, oid(task_id, what="Custom task"), text, wait_s=wait_of(prefer)
        )
        return respond(record, response)

    return router


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed paths and their /api aliases)."""
    return [
        build_run_router("/api/tasks"),
        build_run_router("/tasks", include_in_schema=False),
        build_router("/api/custom-tasks"),
        build_router("/custom-tasks", include_in_schema=False),
    ]
