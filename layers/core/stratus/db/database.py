"""The database handle the services share: the client, the database, liveness checks."""

from __future__ import annotations

import time
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.asynchronous.database import AsyncDatabase

from stratus.db.client import create_client
from stratus.db.repository import Repository, translate_errors


class Database:
    def __init__(self, client: AsyncMongoClient[dict[str, Any]], name: str) -> None:
        self.client = client
        self.db: AsyncDatabase[dict[str, Any]] = client[name]
        self._indexed = False

    @classmethod
    def connect(cls, uri: str, name: str, *, timeout_ms: int) -> Database:
        """No I/O here: the driver connects on first use, so this is safe at Lambda import time."""
        return cls(create_client(uri, timeout_ms=timeout_ms), name)

    @translate_errors
    async def ping(self) -> float:
        """Round trip in milliseconds; raises ServiceUnavailable when the database is away."""
        started = time.perf_counter()
        await self.db.command("ping")
        return (time.perf_counter() - started) * 1000

    async def ensure_indexes(self, repositories: list[Repository]) -> None:
        """Create every repository's indexes once per process; retried on the next call after a failure."""
        if self._indexed:
            return
        for repository in repositories:
            await repository.ensure_indexes()
        self._indexed = True

    async def close(self) -> None:
        await self.client.close()
