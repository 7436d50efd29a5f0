"""Structured JSON logs through Powertools Logger, stamped with the request and user ids.

Powertools is imported when the first logger is built (stratus.composition builds it on the first log
line), not with this module: the package imports its metrics and tracing modules too."""

from __future__ import annotations

import logging
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from stratus.observability.context import request_id_var, user_id_var

if TYPE_CHECKING:
    from aws_lambda_powertools import Logger


class _ContextFilter(logging.Filter):
    """Adds request_id / user_id from context variables, so every log line inside a request carries them."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        user_id = user_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        if user_id is not None:
            record.user_id = user_id
        return True


@lru_cache(maxsize=8)
def get_logger(service: str = "stratus", level: str = "INFO") -> Logger:
    from aws_lambda_powertools import Logger

    logger = Logger(service=service, level=level)
    logger.addFilter(_ContextFilter())
    return logger


def log_extra(**fields: Any) -> dict[str, Any]:
    """Extra fields for one log call (Powertools puts them at the top level of the JSON line)."""
    return {"extra": fields}
