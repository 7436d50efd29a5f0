"""Domain errors. Services and adapters raise these; the API maps them to HTTP in one place, by type."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every error a client may see. `message` is safe to show; `code` is stable for clients."""

    code = "ERROR"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class InvalidInput(DomainError):
    """The request is well-formed but its content is wrong (400)."""

    code = "INVALID_PARAMETERS"


class ValidationFailed(DomainError):
    """A field failed validation (422); `details` lists {field, message}."""

    code = "VALIDATION_ERROR"


class Unauthenticated(DomainError):
    """No valid credentials (401)."""

    code = "AUTHENTICATION_REQUIRED"


class Forbidden(DomainError):
    """Authenticated but not allowed (403)."""

    code = "INSUFFICIENT_PERMISSIONS"


class NotFound(DomainError):
    """Missing, or owned by someone else: the two are indistinguishable on purpose (404)."""

    code = "RESOURCE_NOT_FOUND"


class Conflict(DomainError):
    """The resource's state forbids the operation (409)."""

    code = "CONFLICT"


class PayloadTooLarge(DomainError):
    """Body or file over a configured limit (413)."""

    code = "PAYLOAD_TOO_LARGE"


class UnsupportedMediaType(DomainError):
    """Content type we do not accept (415)."""

    code = "UNSUPPORTED_MEDIA_TYPE"


class QuotaExceeded(DomainError):
    """The plan's quota is used up (402)."""

    code = "QUOTA_EXCEEDED"


class RateLimited(DomainError):
    """Too many requests in the current window (429)."""

    code = "RATE_LIMIT_EXCEEDED"

    def __init__(self, message: str = "Too many requests", *, retry_after: int, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServiceUnavailable(DomainError):
    """A dependency (database, queue, storage) cannot be reached right now (503)."""

    code = "SERVICE_UNAVAILABLE"


class DependencyFailed(DomainError):
    """A dependency answered with an error we cannot recover from (502)."""

    code = "DEPENDENCY_FAILED"
