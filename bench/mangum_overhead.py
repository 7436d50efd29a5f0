"""Per-invocation cost of the API Lambda's request path: through Mangum (API Gateway HTTP API v2
events, as Lambda delivers them) side by side with the same ASGI app called directly.

Runs against a real SecantusDB server; prints median and p95 in microseconds.
Usage: .venv/bin/python bench/mangum_overhead.py [iterations]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from mangum import Mangum
from secantus import SecantusDBServer

from stratus.api.app import create_app
from stratus.composition import Ports, build_container
from stratus.local.runtime import build_local_ports
from stratus.settings import Settings


def api_gateway_event(path: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "version": "2.0",
        "routeKey": "$default",
        "rawPath": path,
        "rawQueryString": "",
        "headers": {"host": "api.example.com", **(headers or {})},
        "requestContext": {
            "http": {"method": "GET", "path": path, "protocol": "HTTP/1.1", "sourceIp": "203.0.113.7"},
            "requestId": "bench",
            "stage": "$default",
        },
        "isBase64Encoded": False,
    }


class Context:
    function_name = "bench"
    aws_request_id = "bench"


def summarise(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered) * 1e6, ordered[int(len(ordered) * 0.95)] * 1e6


def main() -> None:
    iterations = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    server = SecantusDBServer(storage_path=":memory:")
    server.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            settings = Settings(
                mongodb_uri=server.uri + "?retryWrites=false",
                state_dir=Path(tmp),
                log_level="ERROR",
                rate_limit_user=10**9,
                rate_limit_anonymous=10**9,
            )
            # One loop for everything: Mangum runs on the thread's current loop, and the async MongoDB
            # client must stay on the loop it first ran on.
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            ports: Ports = build_local_ports(settings)
            container = build_container(settings, ports)
            app = create_app(container)
            handler = Mangum(app, lifespan="off")
            # Register a user so the authenticated route is measured with a real token.
            token = loop.run_until_complete(_token(app))
            results = {}
            for label, path, headers in (
                ("GET /health", "/health", {}),
                ("GET /api/users/me (JWT)", "/api/users/me", {"authorization": f"Bearer {token}"}),
            ):
                event = api_gateway_event(path, headers)
                handler(event, Context())  # warm
                mangum = []
                for _ in range(iterations):
                    started = time.perf_counter()
                    response = handler(event, Context())
                    mangum.append(time.perf_counter() - started)
                assert response["statusCode"] == 200, response
                direct = loop.run_until_complete(_direct(app, path, headers, iterations))
                results[label] = (summarise(direct), summarise(mangum))
    finally:
        server.stop()
    print(f"{'request':<28}{'direct ASGI median/p95 (us)':>30}{'via Mangum median/p95 (us)':>30}")
    for label, ((d_med, d_p95), (m_med, m_p95)) in results.items():
        print(f"{label:<28}{d_med:>17.0f} / {d_p95:<10.0f}{m_med:>17.0f} / {m_p95:<10.0f}")
    print(json.dumps({"iterations": iterations}))


async def _token(app: Any) -> str:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        body = {"email": "bench@example.com", "password": "bench-password-1", "name": "Bench"}
        response = await client.post("/api/auth/register", json=body)
        return str(response.json()["access_token"])


async def _direct(app: Any, path: str, headers: dict[str, str], iterations: int) -> list[float]:
    samples = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as client:
        await client.get(path, headers=headers)
        for _ in range(iterations):
            started = time.perf_counter()
            response = await client.get(path, headers=headers)
            samples.append(time.perf_counter() - started)
        assert response.status_code == 200
    return samples


if __name__ == "__main__":
    main()
