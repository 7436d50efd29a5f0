"""Live updates: WebSocket connections follow jobs, and job events are pushed to the ones that do.

Transport-neutral: the local WebSocket endpoint and the API Gateway WebSocket Lambda both register
connections here and hand client messages to `respond`; pushes go through the Notifier port
(`post_to_connection` on AWS). Messages use seed 002's shape, {"type": ..., "data": {...}}.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from bson import ObjectId

from stratus.db.repositories.connections import MAX_SUBSCRIPTIONS, ConnectionRepository
from stratus.errors import Conflict, DomainError, NotFound
from stratus.ports.notifier import Notifier

log = logging.getLogger(__name__)

# Whether a job (or task, or download) with this id belongs to the user; False for malformed ids.
JobOwner = Callable[[ObjectId, str], Awaitable[bool]]


def error_message(message: str) -> dict[str, Any]:
    return {"type": "error", "data": {"message": message}}


class LiveUpdates:
    def __init__(self, connections: ConnectionRepository, notifier: Notifier, *, job_owner: JobOwner) -> None:
        self._connections = connections
        self._notifier = notifier
        self._job_owner = job_owner

    async def connect(self, connection_id: str, user_id: ObjectId) -> None:
        await self._connections.add(connection_id, user_id)

    async def disconnect(self, connection_id: str) -> None:
        await self._connections.remove(connection_id)

    async def user_of(self, connection_id: str) -> ObjectId | None:
        """Who opened the connection; None when it is unknown (closed, or expired)."""
        return await self._connections.user_of(connection_id)

    async def subscribe(self, connection_id: str, user_id: ObjectId, job_id: str) -> None:
        """Follow a job. Someone else's job is NotFound, exactly like a missing one."""
        if not await self._job_owner(user_id, job_id):
            raise NotFound("Job not found")
        if not await self._connections.subscribe(connection_id, user_id, job_id):
            if await self._connections.user_of(connection_id) == user_id:
                raise Conflict(f"A connection may follow at most {MAX_SUBSCRIPTIONS} jobs")
            raise NotFound("Connection not found")

    async def unsubscribe(self, connection_id: str, job_id: str) -> None:
        await self._connections.unsubscribe(connection_id, job_id)

    async def send(self, connection_id: str, message: Mapping[str, Any]) -> bool:
        """One message to one connection (replies, on AWS); a gone connection is forgotten."""
        if await self._notifier.send(connection_id, message):
            return True
        await self._connections.remove(connection_id)
        return False

    async def push(self, job_id: str, message: Mapping[str, Any]) -> int:
        """Send `message` to every connection following `job_id`; returns how many received it.

        Connections the notifier reports gone are removed. Any other failure (throttling, an oversized
        message) is logged and skipped: one bad connection must not stop the others' updates.
        """
        targets = await self._connections.subscribers(job_id)
        results = await asyncio.gather(
            *(self._notifier.send(c, message) for c in targets), return_exceptions=True
        )
        gone = [c for c, result in zip(targets, results, strict=True) if result is False]
        for connection_id, result in zip(targets, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("live update to %s failed: %r", connection_id, result)
        await self._connections.remove_many(gone)
        return sum(1 for result in results if result is True)

    async def respond(self, connection_id: str, user_id: ObjectId, message: Any) -> dict[str, Any]:
        """The reply to one client message: {"action": "subscribe"|"unsubscribe", "job_id"} or "ping"."""
        action = message.get("action") if isinstance(message, dict) else None
        if action == "ping":
            return {"type": "pong", "data": {}}
        if action not in ("subscribe", "unsubscribe"):
            return error_message(f"unknown action: {action!r}")
        job_id = message.get("job_id") or message.get("task_id") or message.get("chat_id")
        if not isinstance(job_id, str) or not job_id:
            return error_message("job_id is required")
        if action == "unsubscribe":
            await self.unsubscribe(connection_id, job_id)
            return {"type": "unsubscribed", "data": {"job_id": job_id}}
        try:
            await self.subscribe(connection_id, user_id, job_id)
        except DomainError as e:
            return error_message(e.message)
        return {"type": "subscribed", "data": {"job_id": job_id}}
