"""The EventBridge consumer: each invocation carries one event envelope for the job-events service.

An exception makes EventBridge retry the invocation (and, when retries run out, park the event in the
rule target's DLQ); events that can never apply (unknown job, stale sequence) return normally instead.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

Runner = Callable[[Coroutine[Any, Any, None]], None]
EventHandler = Callable[[Mapping[str, Any]], Awaitable[None]]


def build_eventbridge_handler(
    handle: EventHandler, run: Runner
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if "detail-type" not in event:
            raise ValueError("not an EventBridge event: no detail-type")
        run(_call(handle, event))
        return {"handled": event.get("id")}

    return handler


async def _call(handle: EventHandler, event: Mapping[str, Any]) -> None:
    await handle(event)
