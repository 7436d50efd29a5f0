"""When MongoDB is away the API says so with 503, and recovers by itself when it is back."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from secantus import SecantusDBServer

from stratus.composition import build_container
from stratus.db.repository import Repository
from stratus.errors import ServiceUnavailable
from stratus.local.embedded_db import free_port
from stratus.local.runtime import build_local_app, build_local_ports
from stratus.settings import Settings


class _Things(Repository):
    collection_name = "things"

    async def count(self) -> int:
        return await self.collection.count_documents({})


async def test_outage_answers_503_then_recovers(tmp_path: Path) -> None:
    # GIVEN an API whose database port has nothing listening yet
    port = free_port()
    settings = Settings(
        env="test",
        mongodb_uri=f"mongodb://127.0.0.1:{port}/?retryWrites=false&directConnection=true",
        mongodb_timeout_ms=300,
        state_dir=tmp_path,
    )
    ports = build_local_ports(settings)
    container = build_container(settings, ports)
    app = build_local_app(container, ports)
    things = _Things(container.database.db)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as client:
        # WHEN the probes run THEN they report the database as disconnected with 503
        db = await client.get("/health/db")
        assert db.status_code == 503
        assert db.json()["database"] == "disconnected"
        ready = await client.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["services"]["database"] == "disconnected"
        assert ready.json()["services"]["storage"] == "connected"
        # AND a data call raises the domain error the API maps to 503
        with pytest.raises(ServiceUnavailable, match="Database unavailable"):
            await things.count()
        # AND liveness still answers: the process itself is fine
        assert (await client.get("/health")).status_code == 200

        # WHEN the database comes up on that port
        server = SecantusDBServer(port=port, storage_path=":memory:")
        server.start()
        try:
            # THEN the same process recovers without a restart
            assert (await client.get("/health/db")).status_code == 200
            assert (await client.get("/ready")).json()["status"] == "ready"
            assert await things.count() == 0
        finally:
            await container.close()
            server.stop()
