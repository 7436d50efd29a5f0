"""Seed 000's NLP tasks at /tasks/* (and /api/tasks/*), answered inline or as a 202 with a task id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, Response, status

from stratus.api.deps import Tasks
from stratus.api.prefer import PreferHeader, wait_of
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.identity.principal import Principal
from stratus.capabilities.nlp.schemas import (
    ClassificationRequest,
    EmbeddingsRequest,
    GenerationRequest,
    NERRequest,
    QARequest,
    SummarizationRequest,
    TaskRequest,
    TaskResponse,
)
from stratus.db.ids import ObjectIdStr, oid

if TYPE_CHECKING:
    # The service is imported when the container builds it (stratus.composition), not with the routes.
    from stratus.capabilities.nlp.service import TaskService


def _body(record: dict[str, Any]) -> dict[str, Any]:
    return {
        "task_id": str(record["_id"]),
        "task": record["task"],
        "status": record["status"],
        "model": record["model"],
        "result": record.get("result"),
        "error": record.get("error"),
        "created_at": record["created_at"],
        "completed_at": record.get("completed_at"),
        # custom tasks (user code): why a run failed, and which sandbox layers held it
        "reason": record.get("reason"),
        "isolation": record.get("isolation"),
    }


def respond(record: dict[str, Any], response: Response) -> dict[str, Any]:
    """A task still running when the wait ended is 202, pointing at where its result will be."""
    if record["status"] == "pending":
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/api/tasks/{record['_id']}"
    return _body(record)


async def _run(
    body: TaskRequest, user: Principal, tasks: TaskService, response: Response, prefer: str | None
) -> dict[str, Any]:
    record = await tasks.run(
        user.user_id, body.task, body.model_name, body.inputs(), body.options(),
        wait_s=wait_of(prefer), single=body.single,
    )  # fmt: skip
    return respond(record, response)


# path, request schema (which knows its task, inputs and options), operation name, description
TASK_ROUTES: tuple[tuple[str, type[TaskRequest], str, str], ...] = (
    ("/classification", ClassificationRequest, "classification",
     "Labels with scores. Without a fine-tuned classifier this is zero-shot classification over\n"
     "`candidate_labels` with the embedding model; `method` says which answered."),
    ("/qa", QARequest, "question_answering",
     "The answer, its score and its character span in `context` (context[start:end] == answer)."),
    ("/ner", NERRequest, "named_entities", "Entities with type, text and character span."),
    ("/summarization", SummarizationRequest, "summarization",
     "A summary between `min_length` and `max_length` tokens."),
    ("/embeddings", EmbeddingsRequest, "embeddings",
     "One vector per text, with its dimension; `normalize` for unit length."),
    ("/generation", GenerationRequest, "generation", "Generated text with token usage."),
)  # fmt: skip


def _task_endpoint(schema: type[TaskRequest], doc: str) -> Callable[..., Awaitable[dict[str, Any]]]:
    """One handler for every task: the request schema it validates is the only difference."""

    async def endpoint(
        body: TaskRequest, user: CurrentUser, tasks: Tasks, response: Response, prefer: PreferHeader = None
    ) -> dict[str, Any]:
        return await _run(body, user, tasks, response, prefer)

    # The annotation FastAPI reads is the task's own schema (this module's annotations are strings).
    endpoint.__annotations__["body"] = schema
    endpoint.__doc__ = doc
    return endpoint


def build_router(prefix: str, *, include_in_schema: bool = True) -> APIRouter:
    router = APIRouter(
        prefix=prefix,
        tags=["tasks"],
        route_class=StratusRoute,
        dependencies=[RateLimit],
        include_in_schema=include_in_schema,
    )
    responses: dict[int | str, dict[str, Any]] = {
        202: {"model": TaskResponse, "description": "Still running"}
    }

    for path, schema, name, doc in TASK_ROUTES:
        router.add_api_route(
            path,
            _task_endpoint(schema, doc),
            methods=["POST"],
            name=name,
            response_model=TaskResponse,
            responses=responses,
        )
    return router


results = APIRouter(prefix="/api/tasks", tags=["tasks"], route_class=StratusRoute, dependencies=[RateLimit])


@results.get("/{task_id}", response_model=TaskResponse)
async def get_task(task_id: ObjectIdStr, user: CurrentUser, tasks: Tasks) -> dict[str, Any]:
    """A task's status and, once finished, its result."""
    return _body(await tasks.get(user.user_id, oid(task_id, what="Task")))


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [build_router("/api/tasks"), build_router("/tasks", include_in_schema=False), results]
