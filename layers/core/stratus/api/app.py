"""The FastAPI application factory, shared by the Lambda handler and the local runtime."""

from __future__ import annotations

from collections.abc import Iterable

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from stratus import __version__
from stratus.api.errors import install_error_handlers
from stratus.api.middleware import RequestContextMiddleware
from stratus.api.routers import (
    api_keys,
    auth,
    datasets,
    files,
    finetune,
    health,
    jobs,
    meta,
    model_records,
    registry,
    tasks,
    training,
    users,
    webhooks,
)
from stratus.composition import Container

DESCRIPTION = """
Stratus is a serverless machine-learning platform: NLP tasks and custom code, datasets and files,
training and fine-tuning jobs with live progress, generative and recognition media tasks, chats
over your data, and API keys. Every error has one shape: `detail`, `error`, `message`, `code`,
`status_code` and `request_id` (also sent as the `X-Request-ID` header).
"""


def create_app(container: Container, *, extra_routers: Iterable[APIRouter] = ()) -> FastAPI:
    app = FastAPI(
        title="Stratus",
        version=__version__,
        description=DESCRIPTION,
        docs_url="/docs",
        redoc_url="/redoc",
        openapi_url="/openapi.json",
    )
    app.state.container = container
    install_error_handlers(app)
    for router in (
        meta.router,
        health.router,
        users.router,
        api_keys.router,
        model_records.router,
        datasets.router,
        datasets.seed001,
        files.router,
        training.router,
        training.seed002,
        jobs.router,
        finetune.router,
        registry.router,
    ):
        app.include_router(router)
    app.include_router(auth.build_router("/api/auth"))
    # Seeds 000 and 001 call the same handlers without the /api prefix.
    app.include_router(auth.build_router("/auth", include_in_schema=False))
    app.include_router(webhooks.build_router("/api/webhooks"))
    app.include_router(webhooks.build_router("/webhooks", include_in_schema=False))
    app.include_router(tasks.build_router("/api/tasks"))
    app.include_router(tasks.build_router("/tasks", include_in_schema=False))
    app.include_router(tasks.results)
    for router in extra_routers:
        app.include_router(router)
    app.add_middleware(
        CORSMiddleware,
        allow_origins=container.settings.cors_origins,
        allow_methods=["*"],
        allow_headers=["*"],
        expose_headers=["X-Request-ID", "X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset"],
    )
    # Added last so it wraps everything else, CORS included: every response gets a request id.
    app.add_middleware(
        RequestContextMiddleware,
        metrics=container.metrics,
        logger=container.logger,
        bootstrap=container.bootstrap,
    )
    return app
