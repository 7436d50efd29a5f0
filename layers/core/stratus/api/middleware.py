"""One pure-ASGI middleware for request ids, access logs, metrics and the last-resort 500.

Pure ASGI rather than BaseHTTPMiddleware: it adds no extra task per request, which matters for the
per-invocation overhead on Lambda.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from stratus.api.problem import error_body
from stratus.observability.context import request_id_var, user_id_var
from stratus.observability.metrics import Metrics

_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")

Bootstrap = Callable[[], Awaitable[None]]


def _request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if _SAFE_REQUEST_ID.match(candidate):
                return candidate
    # Behind API Gateway, reuse its request id so our logs and its access logs line up.
    event = scope.get("aws.event") or {}
    aws_id = (event.get("requestContext") or {}).get("requestId")
    return str(aws_id) if aws_id else uuid.uuid4().hex


class RequestContextMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics,
        logger: Callable[[], Any],
        bootstrap: Bootstrap | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        # A provider, called at the first log line: building the logger imports the logging library.
        self._logger = logger
        self.bootstrap = bootstrap
        self._bootstrapped = bootstrap is None

    @property
    def logger(self) -> Any:
        return self._logger()

    async def _ensure_bootstrapped(self) -> None:
        if self._bootstrapped or self.bootstrap is None:
            return
        try:
            await self.bootstrap()
            self._bootstrapped = True
        except Exception:  # the database may be away; the next request tries again
            self.logger.warning("bootstrap failed; will retry on the next request", exc_info=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        await self._ensure_bootstrapped()
        request_id = _request_id(scope)
        rid_token = request_id_var.set(request_id)
        uid_token = user_id_var.set(None)
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.perf_counter()
        status = 500
        response_started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                response_started = True
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", request_id.encode()))
                for name, value in scope["state"].get("rate_limit_headers", {}).items():
                    headers.append((name.lower().encode(), value.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception:
            self.logger.exception("unhandled error", extra={"path": scope.get("path")})
            if scope["type"] == "http" and not response_started:
                body = json.dumps(error_body(500, "An unexpected error occurred")).encode()
                await send_wrapper(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
        finally:
            if scope["type"] == "http":
                elapsed = time.perf_counter() - started
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                self.metrics.observe_request(scope["method"], route, status, elapsed)
                self.logger.info(
                    "request",
                    extra={
                        "method": scope["method"],
                        "path": scope.get("path"),
                        "route": route,
                        "status": status,
                        "duration_ms": round(elapsed * 1000, 2),
                        "user_id": user_id_var.get(),
                    },
                )
            user_id_var.reset(uid_token)
            request_id_var.reset(rid_token)
