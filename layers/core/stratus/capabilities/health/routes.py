"""Liveness, database health and readiness (seeds 000 and 004)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from stratus.api.deps import HealthSvc
from stratus.api.routing import StratusRoute
from stratus.schemas.base import Schema
from stratus.schemas.common import UtcDateTime

router = APIRouter(tags=["health"], route_class=StratusRoute)


class Liveness(Schema):
    status: str
    timestamp: UtcDateTime
    version: str
    uptime: int


class DatabaseStatus(Schema):
    status: str
    database: str
    latency_ms: float | None = None
    message: str | None = None


class ReadinessStatus(Schema):
    status: str
    services: dict[str, str]


@router.get("/health", response_model=Liveness, summary="Is the API process alive")
async def health(service: HealthSvc) -> Any:
    return service.liveness()


@router.get(
    "/health/db",
    response_model=DatabaseStatus,
    responses={503: {"model": DatabaseStatus}},
    summary="Can the API reach MongoDB",
)
async def health_db(service: HealthSvc) -> Any:
    result = await service.database()
    if result.healthy:
        return DatabaseStatus(status="healthy", database="connected", latency_ms=result.latency_ms)
    body = DatabaseStatus(status="unhealthy", database="disconnected", message=result.error)
    return JSONResponse(body.model_dump(), status_code=503)


@router.get(
    "/ready",
    response_model=ReadinessStatus,
    responses={503: {"model": ReadinessStatus}},
    summary="Are all dependencies reachable",
)
async def ready(service: HealthSvc) -> Any:
    result = await service.readiness()
    body = ReadinessStatus(status="ready" if result.ready else "not_ready", services=result.services)
    if result.ready:
        return body
    return JSONResponse(body.model_dump(), status_code=503)


def routers() -> list[APIRouter]:
    """What this capability mounts, in order (seed path aliases included)."""
    return [router]
