"""The one error shape every failure takes, with the fields each seed's clients read."""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from stratus.observability.context import current_request_id

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
