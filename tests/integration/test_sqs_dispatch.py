"""The dispatcher Lambda's handler: SQS records through Powertools' BatchProcessor into the message router."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Coroutine
from typing import Any

from stratus.handlers.sqs_dispatch import build_sqs_handler
from stratus.services.messages import MessageRouter


def _event(*bodies: str) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{i}",
                "receiptHandle": f"r{i}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:jobs",
                "awsRegion": "us-east-1",
            }
            for i, body in enumerate(bodies)
        ]
    }


async def test_failed_records_are_reported_individually() -> None:
    # GIVEN a router with one handler that fails for one dataset
    seen: list[str] = []

    async def process(body: Any) -> None:
        if body["dataset_id"] == "bad":
            raise RuntimeError("parse failed")
        seen.append(body["dataset_id"])

    router = MessageRouter()
    router.register("dataset.process", process)
    loop = asyncio.get_running_loop()

    def run(coro: Coroutine[Any, Any, None]) -> None:
        asyncio.run_coroutine_threadsafe(coro, loop).result()

    handler = build_sqs_handler(router, run)
    event = _event(
        json.dumps({"type": "dataset.process", "dataset_id": "a"}),
        json.dumps({"type": "dataset.process", "dataset_id": "bad"}),
        "not json",
        json.dumps({"type": "unknown.kind"}),
        json.dumps({"type": "dataset.process", "dataset_id": "b"}),
    )
    # WHEN the Lambda runtime invokes the handler (in a thread, as Lambda's own loop would be idle)
    result = await asyncio.to_thread(handler, event, None)
    # THEN good records are processed and only the failures go back to the queue
    assert seen == ["a", "b"]
    assert result == {"batchItemFailures": [{"itemIdentifier": i} for i in ("m1", "m2", "m3")]}
