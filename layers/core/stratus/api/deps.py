"""FastAPI dependencies as Annotated aliases. Routers ask for what they need; the container supplies it."""

from __future__ import annotations

from typing import Annotated, cast

from fastapi import Depends, Request

from stratus.composition import Container
from stratus.services.health import HealthService


def get_container(request: Request) -> Container:
    return cast(Container, request.app.state.container)


ContainerDep = Annotated[Container, Depends(get_container)]


def _health(container: ContainerDep) -> HealthService:
    return container.health


HealthSvc = Annotated[HealthService, Depends(_health)]
