"""The job-events consumer: EventBridge envelopes for the job-events service, and SNS notifications of
the SageMaker asynchronous inference endpoint for the task service.

An exception makes EventBridge (or SNS) retry the invocation (and, when retries run out, park the event
in the DLQ); events that can never apply (unknown job, stale sequence, a task already finished) return
normally instead.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any

from stratus.adapters.aws.sagemaker_async import notification_key

Runner = Callable[
    [
        Coroutine[Any, Any, Any],
    ],
    Any,
]
EventHandler = Callable[[Mapping[str, Any]], Awaitable[None]]
InferenceResultHandler = Callable[[str], Awaitable[bool]]

log = logging.getLogger(__name__)


def build_eventbridge_handler(
    handle: EventHandler, run: Runner, *, on_inference_result: InferenceResultHandler | None = None
) -> Callable[[dict[str, Any], Any], dict[str, Any]]:
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        if "Records" in event and on_inference_result is not None:
            return {"finished_tasks": run(_notifications(on_inference_result, event["Records"]))}
        if "detail-type" not in event:
            raise ValueError("not an EventBridge event: no detail-type")
        run(_call(handle, event))
        return {"handled": event.get("id")}

    return handler


async def _call(handle: EventHandler, event: Mapping[str, Any]) -> None:
    await handle(event)


async def _notifications(on_result: InferenceResultHandler, records: list[dict[str, Any]]) -> int:
    finished = 0
    for record in records:
        try:
            message = json.loads((record.get("Sns") or {}).get("Message") or "")
        except ValueError:
            log.warning("dropping an SNS record that is not JSON: %s", record)
            continue
        key = notification_key(message) if isinstance(message, dict) else None
        if key is None:
            log.warning("dropping an SNS message that is not an inference result: %s", message)
            continue
        finished += int(await on_result(key))
    return finished
