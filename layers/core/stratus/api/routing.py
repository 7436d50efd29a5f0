"""A route class that answers 415 when a body arrives in a media type the endpoint does not read."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.params import File, Form
from fastapi.routing import APIRoute

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


class StratusRoute(APIRoute):
    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler
        expects_form = _expects_form(self.dependant)

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
