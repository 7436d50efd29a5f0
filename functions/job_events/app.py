"""Job-events Lambda: EventBridge rules deliver SageMaker/Batch state changes and our workers' progress;
SNS delivers the inference endpoint's completion notifications."""

import asyncio

from stratus.composition import build_container
from stratus.handlers.eventbridge import build_eventbridge_handler
from stratus.settings import get_settings

container = build_container(get_settings())
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())
handler = build_eventbridge_handler(
    container.job_events.handle,
    loop.run_until_complete,
    # SageMaker asynchronous inference notifications (SNS): finish the waiting task, push it to sockets.
    on_inference_result=container.tasks.on_inference_result,
)
