"""WebSocket Lambda: API Gateway's WebSocket API ($connect, $disconnect, $default) for live job updates."""

import asyncio

from stratus.composition import build_container
from stratus.handlers.websocket import build_websocket_handler
from stratus.settings import get_settings

container = build_container(get_settings())
# One loop for the container's lifetime: the async MongoDB client must stay on the loop it first ran on.
loop = asyncio.new_event_loop()
loop.run_until_complete(container.bootstrap())
handler = build_websocket_handler(
    container.auth, container.live, loop.run_until_complete, chat=lambda: container.chat
)
