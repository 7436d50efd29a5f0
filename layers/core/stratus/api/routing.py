"""The route class of every Stratus router: it defers FastAPI's route analysis, and answers 415 when a
body arrives in a media type the endpoint does not read.

FastAPI analyses a route (its dependency tree, a pydantic field for every parameter, the body and
response models) when the route is declared, and again, for the app it is included in, when a request
first walks that router (`fastapi.routing._IncludedRouter` builds an effective route per inclusion).
Every Stratus route is included, so the first analysis is only ever read for the plain settings the
second one copies (path, methods, tags, response model, ...). A StratusRoute keeps those settings as
declared and runs the analysis only if something asks for what it produces: an HTTP Lambda's cold start
no longer analyses each of its routes twice (bench/cold_import.py).
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from enum import IntEnum
from typing import Any

from fastapi import Request, Response, routing
from fastapi.datastructures import Default
from fastapi.dependencies.models import Dependant
from fastapi.params import File, Form
from fastapi.routing import APIRoute
from starlette.routing import get_name
from starlette.types import Receive, Scope, Send

from stratus.api.uploads import check_declared_length
from stratus.errors import UnsupportedMediaType


def _expects_form(dependant: Dependant) -> bool:
    params = list(dependant.body_params)
    for sub in dependant.dependencies:
        params.extend(sub.body_params)
    return any(isinstance(p.field_info, (Form, File)) for p in params)


def _has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    return (length is not None and length != "0") or "transfer-encoding" in request.headers


def _analysed_route(route: APIRoute) -> Any:
    """The route whose analysis a handler being built serves: the effective route of an inclusion
    (FastAPI names it in a context variable while it builds that handler), else the route itself."""
    current = getattr(routing, "_effective_route_context_var", None)
    context = current.get() if current is not None else None
    return context if context is not None and getattr(context, "original_route", None) is route else route


class StratusRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **settings: Any) -> None:
        # What FastAPI's inclusion and matching read, as declared; the analysis waits (`__getattr__`).
        self._declared = (path, endpoint, settings)
        self._analysing = False
        self.path, self.endpoint = path, endpoint  # path_regex and the like: by the analysis too
        self.methods = {method.upper() for method in settings.pop("methods", None) or ["GET"]}
        self.name = settings.pop("name", None) or get_name(endpoint)
        status_code = settings.pop("status_code", None)
        self.status_code = int(status_code) if isinstance(status_code, IntEnum) else status_code
        self.tags = list(settings.pop("tags", None) or [])
        self.dependencies = list(settings.pop("dependencies", None) or [])
        self.responses = dict(settings.pop("responses", None) or {})
        self.response_model = settings.pop("response_model", Default(None))  # inferred by the analysis
        if "form_limits" not in settings:  # else validated by the analysis
            self.form_limits = {}  # FastAPI's value for "none declared", read by get_route_handler
        self.stream_item_type = None  # what a streaming endpoint yields: inferred by the analysis
        for name, value in settings.items():
            setattr(self, name, value)
        settings.update(methods=self.methods, name=self.name, status_code=status_code, tags=self.tags,
                        dependencies=self.dependencies, responses=self.responses,
                        response_model=self.response_model)  # fmt: skip
        self.app = self._analyse_then_handle

    def __getattr__(self, name: str) -> Any:
        # Only reached for what the analysis sets (dependant, body_field, response_field, unique_id...).
        if name.startswith("__") or self.__dict__.get("_analysing", True):
            raise AttributeError(name)
        self._analyse()
        return object.__getattribute__(self, name)

    def _analyse(self) -> None:
        self._analysing = True
        path, endpoint, settings = self._declared
        try:
            super().__init__(path, endpoint, **settings)
        except BaseException:
            self._analysing = False
            raise

    async def _analyse_then_handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A route served directly (not through an included router): its first request analyses it
        # (unless matching it already did, or a concurrent first request).
        if not self._analysing:
            self._analyse()
        await self.app(scope, receive, send)

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        route = _analysed_route(self)
        if route.body_field is None:
            return handler
        expects_form = _expects_form(route.dependant)

        async def checked(request: Request) -> Response:
            if _has_body(request):
                media = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if expects_form and media not in ("multipart/form-data", "application/x-www-form-urlencoded"):
                    raise UnsupportedMediaType("Content-Type must be multipart/form-data")
                if expects_form:
                    # Refuse an oversized upload before its body is received and spooled.
                    check_declared_length(request, request.app.state.container.settings.max_upload_bytes)
                if not expects_form and media and media != "application/json" and not media.endswith("+json"):
                    raise UnsupportedMediaType("Content-Type must be application/json")
            return await handler(request)

        return checked
