"""Exception handlers: domain errors to HTTP by type, in this one place."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from stratus import errors
from stratus.api.problem import error_response, validation_issues

STATUS_BY_ERROR: dict[type[errors.DomainError], int] = {
    errors.InvalidInput: 400,
    errors.Unauthenticated: 401,
    errors.QuotaExceeded: 402,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.ValidationFailed: 422,
    errors.RateLimited: 429,
    errors.DependencyFailed: 502,
    errors.ServiceUnavailable: 503,
}

_HTTP_MESSAGES = {404: "Resource not found", 405: "Method not allowed"}


def status_for(error: errors.DomainError) -> int:
    for cls in type(error).__mro__:
        if cls in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[cls]
    return 400


def _field_name(loc: tuple[Any, ...]) -> str:
    # ("body", "hyperparameters", "learning_rate") -> "hyperparameters.learning_rate"
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    return ".".join(parts) or ".".join(str(p) for p in loc)


def _is_field_list(details: Any) -> bool:
    return (
        isinstance(details, list)
        and bool(details)
        and all(
            isinstance(d, dict) and isinstance(d.get("field"), str) and isinstance(d.get("message"), str)
            for d in details
        )
    )


async def domain_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.DomainError)
    status = status_for(exc)
    headers: dict[str, str] = {}
    extra: dict[str, Any] = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
        extra["retry_after"] = exc.retry_after
    if isinstance(exc, errors.Unauthenticated):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, errors.ServiceUnavailable):
        headers["Retry-After"] = "5"
    if status == 422:
        # Every 422 carries the same `detail` list, whether FastAPI or the domain found the bad value.
        kind = exc.code.lower()
        fields = exc.details if _is_field_list(exc.details) else []
        extra["detail"] = validation_issues(fields, kind) or [{"loc": [], "msg": exc.message, "type": kind}]
    return error_response(status, exc.message, code=exc.code, details=exc.details, headers=headers, **extra)


async def validation_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = exc.errors()
    if any(e.get("type") == "json_invalid" for e in raw):
        position = next((e.get("ctx", {}).get("error") for e in raw if e.get("type") == "json_invalid"), None)
        message = "Malformed JSON body" + (f": {position}" if position else "")
        return error_response(400, message, code="MALFORMED_JSON")
    detail = [
        {"loc": list(e.get("loc", ())), "msg": e.get("msg", ""), "type": e.get("type", "")} for e in raw
    ]
    details = [{"field": _field_name(tuple(e.get("loc", ()))), "message": e.get("msg", "")} for e in raw]
    summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
    return error_response(422, f"Invalid input data: {summary}", detail=detail, details=details)


async def http_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) and exc.detail not in ("Not Found",) else None
    message = message or _HTTP_MESSAGES.get(exc.status_code, "Request failed")
    return error_response(exc.status_code, message, headers=dict(exc.headers or {}))


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.DomainError, domain_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)
