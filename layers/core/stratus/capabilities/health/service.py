"""Liveness and readiness: what /health, /health/db and /ready report."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from stratus import __version__
from stratus.db.database import Database
from stratus.errors import DomainError

Probe = Callable[[], Awaitable[object]]


@dataclass(frozen=True)
class DatabaseHealth:
    healthy: bool
    latency_ms: float | None
    error: str | None


@dataclass(frozen=True)
class Readiness:
    ready: bool
    services: dict[str, str]


class HealthService:
    def __init__(self, database: Database, probes: dict[str, Probe], *, probe_timeout_s: float = 3.0) -> None:
        self._database = database
        self._probes = probes
        self._timeout = probe_timeout_s
        self._started = time.monotonic()
        self.version = __version__

    def liveness(self) -> dict[str, object]:
        return {
            "status": "healthy",
            "timestamp": datetime.now(UTC),
            "version": self.version,
            "uptime": int(time.monotonic() - self._started),
        }

    async def database(self) -> DatabaseHealth:
        try:
            latency = await asyncio.wait_for(self._database.ping(), self._timeout)
        except (DomainError, TimeoutError) as e:
            return DatabaseHealth(False, None, getattr(e, "message", "timed out"))
        return DatabaseHealth(True, round(latency, 2), None)

    async def readiness(self) -> Readiness:
        names = ["database", *self._probes]
        checks = [self._database.ping(), *(probe() for probe in self._probes.values())]
        results = await asyncio.gather(
            *(asyncio.wait_for(check, self._timeout) for check in checks), return_exceptions=True
        )
        services = {
            name: "disconnected" if isinstance(result, BaseException) else "connected"
            for name, result in zip(names, results, strict=True)
        }
        return Readiness(all(state == "connected" for state in services.values()), services)
