"""Per-request context that logs and error bodies read (request id, user id)."""

from __future__ import annotations

from contextvars import ContextVar

request_id_var: ContextVar[str | None] = ContextVar("stratus_request_id", default=None)
user_id_var: ContextVar[str | None] = ContextVar("stratus_user_id", default=None)


def current_request_id() -> str | None:
    return request_id_var.get()
