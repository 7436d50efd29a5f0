"""The one error shape every failure takes, with the fields each seed's clients read, and its description
in the OpenAPI document (the models below are what the document says; `error_body` is what is sent)."""

from typing import Any, Literal

from fastapi.responses import JSONResponse
from pydantic import ConfigDict, Field
from pydantic.json_schema import SkipJsonSchema

from stratus.observability.context import current_request_id
from stratus.schemas.base import Schema

# `error` uses seed 001's snake-case names; `code` seed 004's upper-case codes.
ERROR_NAMES: dict[int, str] = {
    400: "bad_request",
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "validation_error",
    429: "rate_limit_exceeded",
    500: "internal_error",
    502: "bad_gateway",
    503: "service_unavailable",
}

DEFAULT_CODES: dict[int, str] = {
    400: "INVALID_PARAMETERS",
    401: "AUTHENTICATION_REQUIRED",
    403: "INSUFFICIENT_PERMISSIONS",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    422: "VALIDATION_ERROR",
    429: "RATE_LIMIT_EXCEEDED",
    500: "INTERNAL_ERROR",
    503: "SERVICE_UNAVAILABLE",
}


def error_body(
    status: int,
    message: str,
    *,
    code: str | None = None,
    detail: Any = None,
    details: Any = None,
    **extra: Any,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "success": False,
        "detail": message if detail is None else detail,
        "error": ERROR_NAMES.get(status, "error"),
        "message": message,
        "code": code or DEFAULT_CODES.get(status, "ERROR"),
        "status_code": status,
        "request_id": current_request_id(),
    }
    if details is not None:
        body["details"] = details
    body.update(extra)
    return body


def error_response(
    status: int,
    message: str,
    *,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> JSONResponse:
    return JSONResponse(error_body(status, message, **fields), status_code=status, headers=headers)


def validation_issues(fields: list[dict[str, str]], kind: str) -> list[dict[str, Any]]:
    """Seed 003's FastAPI-style `detail` list for a 422 raised by the domain, from its {field, message}
    details. The domain does not know where a field came from, so `loc` is the field's path alone."""
    return [
        {
            "loc": [int(p) if p.isdigit() else p for p in f["field"].split(".") if p],
            "msg": f["message"],
            "type": kind,
        }
        for f in fields
    ]


class FieldError(Schema):
    """A field that failed validation (seed 001's `details` entries)."""

    model_config = ConfigDict(extra="forbid")

    field: str = Field(description="Dotted path of the field, e.g. `hyperparameters.learning_rate`")
    message: str


class ValidationIssue(Schema):
    """One entry of a 422's `detail` list, as FastAPI writes it (seed 003)."""

    model_config = ConfigDict(extra="forbid")

    loc: list[str | int] = Field(description="Where the value was: location (`body`, `query`...) and path")
    msg: str
    type: str


class ErrorResponse(Schema):
    """The body of every 4xx and 5xx response."""

    model_config = ConfigDict(extra="forbid")

    success: Literal[False]
    detail: str | list[ValidationIssue] = Field(
        description="The message; for a 422, the list of fields that failed (seed 003)"
    )
    error: str = Field(description="Snake-case name of the status, e.g. `not_found` (seed 001)")
    message: str = Field(description="Human-readable message, safe to show")
    code: str = Field(description="Stable upper-case code for programs, e.g. `RESOURCE_NOT_FOUND` (seed 004)")
    status_code: int
    request_id: str = Field(description="Also sent as the `X-Request-ID` header")
    # Absent rather than null when there is nothing to say, hence no null in the schema.
    details: SkipJsonSchema[None] | list[FieldError] | dict[str, Any] = Field(
        default=None, description="The fields that failed, or facts about the error (e.g. `max_bytes`)"
    )
    retry_after: SkipJsonSchema[None] | int = Field(
        default=None, description="Seconds to wait (429 only; also the `Retry-After` header)"
    )


class ValidationErrorResponse(ErrorResponse):
    """A 422: the same shape, with `detail` always the list of fields that failed."""

    detail: list[ValidationIssue]


_DESCRIPTIONS: dict[int, str] = {
    400: "The request is malformed or its content is wrong",
    401: "Missing, invalid or expired credentials",
    402: "The plan's quota is used up",
    403: "Authenticated, but not allowed",
    404: "Not found (or owned by someone else)",
    409: "The resource's state forbids the operation",
    413: "Body or file over the size limit",
    415: "Unsupported Content-Type",
    422: "A field failed validation",
    429: "Too many requests",
    500: "Unexpected error",
    502: "A dependency answered with an error",
    503: "A dependency is unavailable; retry later",
}

_REQUEST_ID = {
    "X-Request-ID": {"description": "The request's id", "schema": {"type": "string"}, "required": True}
}
_HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}, "required": True}},
    429: {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}, "required": True}},
    503: {"Retry-After": {"description": "Seconds", "schema": {"type": "integer"}, "required": True}},
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` for these error statuses, each with the one error shape."""
    return {
        status: {
            "model": ValidationErrorResponse if status == 422 else ErrorResponse,
            "description": _DESCRIPTIONS[status],
            "headers": {**_REQUEST_ID, **_HEADERS.get(status, {})},
        }
        for status in statuses
    }
