"""The HTTP Lambdas: one per capability group, each a FastAPI app of that group's routes behind Mangum.

Everything is built once per container at import (cold start); lifespan is off because Mangum would run
startup and shutdown on every invocation. Heavy ML libraries are never imported here.
"""

from __future__ import annotations

from fastapi import FastAPI
from mangum import Mangum

from stratus.api.app import create_app
from stratus.composition import build_container
from stratus.settings import get_settings


def http_lambda(group: str) -> tuple[FastAPI, Mangum]:
    """The app serving `group` (stratus.capabilities.GROUPS) and its Lambda handler."""
    app = create_app(build_container(get_settings()), groups=[group])
    return app, Mangum(app, lifespan="off")
