"""The one place a MongoDB client is configured."""

from __future__ import annotations

from datetime import UTC

from pymongo import AsyncMongoClient


def create_client(uri: str, *, timeout_ms: int, appname: str = "stratus") -> AsyncMongoClient[dict]:  # type: ignore[type-arg]
    """An async client that fails fast when the database is away (so the API can answer 503 quickly).

    tz_aware keeps every datetime in UTC end to end; the URI decides retryWrites (the embedded engine
    turns it off, Atlas keeps it on).
    """
    return AsyncMongoClient(
        uri,
        tz_aware=True,
        tzinfo=UTC,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
        socketTimeoutMS=max(timeout_ms * 10, 20_000),
        appname=appname,
        uuidRepresentation="standard",
    )
