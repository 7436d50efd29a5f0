"""One mapping from botocore failures to domain errors, shared by every AWS adapter.

- throttling, 5xx answers, timeouts and connection failures -> ServiceUnavailable (503: retry later)
- NoSuchKey / 404 / ResourceNotFound                        -> NotFound (404)
- anything else AWS refused (validation, access denied...)   -> DependencyFailed (502)

Messages are safe to show to API clients: they name the dependency, never the AWS request or its error text
(which can carry ARNs and account ids); the original exception stays chained for the logs.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from stratus.errors import DependencyFailed, DomainError, NotFound, ServiceUnavailable

# Error codes that mean "slow down / try again", whatever the HTTP status says.
RETRYABLE_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",  # API Gateway's throttling code
        "SlowDown",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalError",
        "InternalFailure",
        "InternalServerError",
        "InternalServiceError",
        "InternalServerException",
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        "EC2ThrottledException",
    }
)
# Error codes that mean "the thing you asked for does not exist".
NOT_FOUND_CODES = frozenset(
    {"NoSuchKey", "NotFound", "404", "ResourceNotFound", "ResourceNotFoundException", "NoSuchUpload"}
)
# Missing containers are configuration faults, not a missing user resource: never a 404 to clients.
_CONFIGURATION_CODES = frozenset(
    {"NoSuchBucket", "AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist"}
)


def error_code(e: ClientError) -> str:
    return str(e.response.get("Error", {}).get("Code") or "")


def http_status(e: ClientError) -> int:
    return int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)


def classify(code: str, status: int = 0) -> type[DomainError]:
    """The domain error class for an AWS error code (and HTTP status, when known)."""
    if code in RETRYABLE_CODES or status == 429 or status >= 500:
        return ServiceUnavailable
    if code in _CONFIGURATION_CODES:
        return DependencyFailed
    if code in NOT_FOUND_CODES or status == 404:
        return NotFound
    return DependencyFailed


def translate(e: Exception, what: str, **context: Any) -> DomainError:
    """The domain error for a failed AWS call; `what` names the dependency ("storage", "queue"...).

    Use as `raise translate(e, "storage") from e`. `context` lands in the message for NotFound only
    (e.g. `key=...`), which is the one case where the caller's own input is the subject.
    """
    if isinstance(e, DomainError):
        return e
    if isinstance(e, ClientError):
        code = error_code(e)
        cls = classify(code, http_status(e))
        if cls is NotFound:
            subject = ", ".join(f"{k}={v}" for k, v in context.items())
            return NotFound(f"{what.capitalize()} object not found" + (f" ({subject})" if subject else ""))
        if cls is ServiceUnavailable:
            return ServiceUnavailable(f"{what.capitalize()} is temporarily unavailable, please retry")
        return DependencyFailed(f"{what.capitalize()} rejected the request", details={"aws_error": code})
    if isinstance(e, BotoConnectionError | HTTPClientError):
        # Connect/read timeouts, refused or dropped connections, TLS failures.
        return ServiceUnavailable(f"{what.capitalize()} cannot be reached, please retry")
    if isinstance(e, BotoCoreError):
        # Credentials, parameter validation, endpoint resolution: retrying will not help.
        return DependencyFailed(f"{what.capitalize()} call failed", details={"aws_error": type(e).__name__})
    return DependencyFailed(f"{what.capitalize()} call failed")
