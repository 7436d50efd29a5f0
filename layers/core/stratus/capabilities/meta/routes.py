"""Welcome message (seed 001), Prometheus metrics and the OpenAPI document in YAML (seed 004)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from stratus.api.deps import MetricsDep
from stratus.api.routing import StratusRoute

router = APIRouter(tags=["meta"], route_class=StratusRoute)


@router.get("/", summary="Welcome", response_model=dict[str, str])
async def welcome(request: Request) -> Any:
    """The JSON welcome for API clients; a browser (Accept: text/html) is sent to the web console."""
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse(f"{str(request.scope.get('root_path', '')).rstrip('/')}/console", 307)
    return {"message": "Welcome to the Deep Learning Platform", "name": "Stratus", "docs": "/docs"}


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(metrics: MetricsDep) -> Response:
    return Response(metrics.render(), media_type=metrics.content_type)


@router.get("/openapi.yaml", include_in_schema=False)
async def openapi_yaml(request: Request) -> Response:
    import yaml  # only this rarely used route needs it: kept out of the cold start

    document = yaml.safe_dump(request.app.openapi(), sort_keys=False, allow_unicode=True)
    return Response(document, media_type="application/yaml")


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
