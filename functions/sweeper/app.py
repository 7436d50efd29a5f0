"""Sweeper Lambda (EventBridge schedule): re-queues jobs stuck in `queued`, fails silent workers,
and re-sends (or fails) datasets stuck in `processing`."""

import asyncio
from typing import Any

from stratus.composition import build_container
from stratus.settings import get_settings

container = build_container(get_settings())
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())


async def _sweep() -> dict[str, int]:
    return {
        "requeued": await container.jobs.sweep(),
        "failed": await container.job_events.sweep(),
        "datasets": await container.datasets.sweep(),
    }


def handler(event: dict[str, Any], context: Any) -> dict[str, int]:
    result = loop.run_until_complete(_sweep())
    container.logger.info("sweep", extra=result)
    return result
