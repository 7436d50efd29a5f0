"""Dispatcher Lambda: consumes the jobs queue (SQS event source with ReportBatchItemFailures)."""

import asyncio

from stratus.composition import build_container
from stratus.handlers.sqs_dispatch import build_sqs_handler
from stratus.settings import get_settings

container = build_container(get_settings())
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())
handler = build_sqs_handler(container.messages, loop.run_until_complete)
