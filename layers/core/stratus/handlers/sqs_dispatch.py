"""The SQS consumer: each record's JSON body goes to the message router; failures are reported per record.

Powertools' BatchProcessor returns `batchItemFailures`, so one bad message is retried (and, after the
queue's maxReceiveCount, dead-lettered) without redelivering the rest of its batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Coroutine
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stratus.errors import InvalidInput
from stratus.services.messages import MessageRouter

# Runs one coroutine to completion on the process's long-lived event loop (the async MongoDB client
# must stay on the loop it first ran on, across invocations).
Runner = Callable[[Coroutine[Any, Any, None]], None]
LambdaHandler = Callable[[dict[str, Any], Any], dict[str, Any]]


def build_sqs_handler(router: MessageRouter, run: Runner) -> LambdaHandler:
    processor = BatchProcessor(event_type=EventType.SQS)

    def record_handler(record: SQSRecord) -> None:
        try:
            body = json.loads(record.body)
        except ValueError as e:
            raise InvalidInput(f"message {record.message_id} is not JSON") from e
        if not isinstance(body, dict):
            raise InvalidInput(f"message {record.message_id} is not a JSON object")
        run(router.handle(body))

    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event, record_handler=record_handler, processor=processor, context=context
            )
        )

    return handler
