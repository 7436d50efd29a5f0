"""Webhooks Lambda: consumes the webhooks queue (SQS event source with ReportBatchItemFailures); each
webhook.deliver message is one signed POST to the receiver, retried by WebhookService with a delay."""

import asyncio

from stratus.composition import build_container
from stratus.handlers.sqs_dispatch import build_sqs_handler
from stratus.settings import get_settings

container = build_container(get_settings())
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())
# The same router as the dispatcher: only webhook.deliver messages are sent to this queue.
handler = build_sqs_handler(container.messages, loop.run_until_complete)
