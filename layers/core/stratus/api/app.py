"""The FastAPI application factory, shared by the Lambda handler and the local runtime."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.middleware.cors import CORSMiddleware

from stratus import __version__, capabilities
from stratus.api import docs
from stratus.api.errors import install_error_handlers
from stratus.api.middleware import RequestContextMiddleware
from stratus.api.problem import error_responses
from stratus.composition import Container

# The errors each operation may answer, all in the one shape (stratus.api.problem), declared here once for
# the OpenAPI document; an operation's own declaration of a status (e.g. /ready's 503 body) wins. The
# 422 entry also replaces FastAPI's default HTTPValidationError, which is not what the API sends.
# Any operation can fail unexpectedly (500).
PUBLIC_ERRORS = error_responses(500)
# The API proper: every operation is rate-limited (429) and authenticated or an auth flow (401, 403),
# takes input (400, 404, 413, 415, 422), reads or writes state (409, 402 when it counts against a quota)
# and reaches the database, storage, queue or inference (502, 503).
API_ERRORS = error_responses(400, 401, 402, 403, 404, 409, 413, 415, 422, 429, 500, 502, 503)

DESCRIPTION = """
Stratus is a serverless machine-learning platform: NLP tasks and custom code, datasets and files,
training and fine-tuning jobs with live progress, generative and recognition media tasks, chats
over your data, and API keys. Every error has one shape (`ErrorResponse`): `detail`, `error`, `message`,
`code`, `status_code` and `request_id` (also sent as the `X-Request-ID` header); in a 422, `detail` lists
the fields that failed.
"""


def create_app(
    container: Container,
    *,
    groups: Iterable[str] | None = None,
    extra_routers: Iterable[APIRouter] = (),
) -> FastAPI:
    """The API with the routes of the capabilities in `groups` (every capability for None: the local
    runtime and the tests). One HTTP Lambda serves one group; each serves the whole API's document."""
    app = _shell(capabilities.in_groups(groups))
    app.state.container = container
    if groups is not None:
        # A group's Lambda still serves the whole API's document (/openapi.json, /docs): built from every
        # capability's routers on the first request for it, not at cold start.
        def whole_document() -> dict[str, Any]:
            if app.openapi_schema is None:
                app.openapi_schema = _shell(capabilities.CAPABILITIES).openapi()
            return app.openapi_schema

        app.openapi = whole_document  # type: ignore[method-assign]
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
        logger=lambda: container.logger,
        bootstrap=container.bootstrap,
    )
    return app


def _shell(mounted: Iterable[capabilities.Capability]) -> FastAPI:
    """The FastAPI app with the routes of `mounted` and the one error shape, before any middleware."""
    app = FastAPI(
        title="Stratus",
        version=__version__,
        description=DESCRIPTION,
        # /docs and /redoc on the package's own assets (stratus.api.docs), not FastAPI's CDN ones.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
        responses=PUBLIC_ERRORS,
    )
    docs.install(app)
    install_error_handlers(app)
    for capability in mounted:
        for router in capabilities.routes_of([capability]):
            app.include_router(router, responses=API_ERRORS if capability.api_errors else None)
    return app
