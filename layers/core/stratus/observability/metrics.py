"""Prometheus metrics on a registry of our own (one per app, so tests and reloads never clash).

prometheus_client (and its HTTP exposition modules) is imported when the first request is observed or
the metrics are read, not when the container is built: a Lambda's cold start does not pay for it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class _Collectors:
    # A plain class: a dataclass would cost more at import than the rest of this module.
    def __init__(
        self, registry: CollectorRegistry, requests: Counter, latency: Histogram, errors: Counter
    ) -> None:
        self.registry = registry
        self.requests = requests
        self.latency = latency
        self.errors = errors


class Metrics:
    @cached_property
    def _collectors(self) -> _Collectors:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        registry = CollectorRegistry()
        return _Collectors(
            registry=registry,
            requests=Counter(
                "stratus_http_requests_total",
                "HTTP requests by route template, method and status code.",
                ("method", "route", "status"),
                registry=registry,
            ),
            latency=Histogram(
                "stratus_http_request_duration_seconds",
                "HTTP request latency by route template and method.",
                ("method", "route"),
                buckets=_LATENCY_BUCKETS,
                registry=registry,
            ),
            errors=Counter(
                "stratus_http_errors_total",
                "Error responses by route template and error code.",
                ("route", "code"),
                registry=registry,
            ),
        )

    @property
    def registry(self) -> CollectorRegistry:
        return self._collectors.registry

    @property
    def requests(self) -> Counter:
        return self._collectors.requests

    @property
    def latency(self) -> Histogram:
        return self._collectors.latency

    @property
    def errors(self) -> Counter:
        return self._collectors.errors

    @property
    def content_type(self) -> str:
        from prometheus_client.exposition import CONTENT_TYPE_LATEST

        return CONTENT_TYPE_LATEST

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return generate_latest(self.registry)
