"""Job-events Lambda: EventBridge rules deliver SageMaker/Batch state changes and our workers' progress."""

import asyncio

from stratus.composition import build_container
from stratus.handlers.eventbridge import build_eventbridge_handler
from stratus.settings import get_settings

container = build_container(get_settings())
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())
handler = build_eventbridge_handler(container.job_events.handle, loop.run_until_complete)
