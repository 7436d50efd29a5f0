"""MessageQueue in process: what SQS plus its Lambda consumer do, for `stratus serve` and the tests.

Kept deliberately close to SQS's contract so code that works locally works on AWS: bodies must be JSON
(checked at send), delivery is at least once, a failing message is redelivered after a short
"visibility timeout" and dead-lettered after `max_receive_count` receives, and deduplication ids are
remembered for five minutes.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stratus.errors import InvalidInput

Handler = Callable[[dict[str, Any]], Awaitable[None]]

MAX_MESSAGE_BYTES = 256 * 1024  # SQS's limit
MAX_DELAY_S = 900  # SQS's limit
DEDUP_WINDOW_S = 300.0  # SQS FIFO's deduplication interval

log = logging.getLogger(__name__)


@dataclass
class _Message:
    id: str
    payload: str  # the JSON text: each delivery decodes a fresh body, so a handler's edits never leak
    receive_count: int = 0


class LocalQueue:
    def __init__(
        self, max_receive_count: int = 3, retry_delay_s: float = 0.05, *, concurrency: int = 1
    ) -> None:
        if max_receive_count < 1 or concurrency < 1:
            raise ValueError("max_receive_count and concurrency must be at least 1")
        self.max_receive_count = max_receive_count
        self.retry_delay_s = retry_delay_s
        self.concurrency = concurrency
        # Messages that exhausted their receives, with the last error: the local dead-letter queue.
        self.dead_letters: list[tuple[dict[str, Any], str]] = []
        self._ready: asyncio.Queue[_Message] = asyncio.Queue()
        self._dedup: dict[str, tuple[str, float]] = {}
        self._pending = 0  # sent and neither handled nor dead-lettered (delayed and in-flight included)
        self._idle = asyncio.Event()
        self._idle.set()
        self._dispatcher: asyncio.Task[None] | None = None
        self._deliveries: set[asyncio.Task[None]] = set()

    # --- producer side ------------------------------------------------------------------------

    async def send(
        self,
        body: Mapping[str, Any],
        *,
        delay_seconds: int = 0,
        deduplication_id: str | None = None,
    ) -> str:
        try:
            payload = json.dumps(body, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as e:
            raise InvalidInput(f"Queue message is not JSON-serialisable: {e}") from e
        if len(payload.encode()) > MAX_MESSAGE_BYTES:
            raise InvalidInput(f"Queue message exceeds {MAX_MESSAGE_BYTES} bytes")
        if not 0 <= delay_seconds <= MAX_DELAY_S:
            raise InvalidInput(f"delay_seconds must be between 0 and {MAX_DELAY_S}")
        now = time.monotonic()
        self._dedup = {k: v for k, v in self._dedup.items() if now - v[1] < DEDUP_WINDOW_S}
        if deduplication_id is not None and deduplication_id in self._dedup:
            return self._dedup[deduplication_id][0]
        message = _Message(id=str(uuid.uuid4()), payload=payload)
        if deduplication_id is not None:
            self._dedup[deduplication_id] = (message.id, now)
        self._pending += 1
        self._idle.clear()
        self._enqueue(message, delay_seconds)
        return message.id

    async def ping(self) -> None:
        """Always reachable: the queue lives in this process."""

    def _enqueue(self, message: _Message, delay_s: float) -> None:
        if delay_s <= 0:
            self._ready.put_nowait(message)
        else:
            asyncio.get_running_loop().call_later(delay_s, self._ready.put_nowait, message)

    # --- consumer side ------------------------------------------------------------------------

    async def start(self, handler: Handler) -> None:
        """Deliver messages (queued ones first) to `handler`, up to `concurrency` at a time."""
        if self._dispatcher is not None:
            raise RuntimeError("the queue consumer is already running")
        self._dispatcher = asyncio.create_task(self._dispatch(handler), name="local-queue-dispatcher")

    async def stop(self, *, grace_s: float = 5.0) -> None:
        """Stop consuming: in-flight handlers get `grace_s` to finish, then are cancelled.

        A cancelled message goes back on the queue without counting as a failed receive, and messages
        not yet delivered stay queued: a later `start` delivers them. Safe to call when not started.
        """
        dispatcher, self._dispatcher = self._dispatcher, None
        if dispatcher is not None:
            dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await dispatcher
        if self._deliveries:
            _, late = await asyncio.wait(set(self._deliveries), timeout=grace_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def join(self) -> None:
        """Wait until every sent message was handled or dead-lettered (delayed ones included).

        Only returns if a consumer is running (or nothing is pending).
        """
        await self._idle.wait()

    async def wait_idle(self, limit_s: float | None = None) -> None:
        """`join`, bounded: raises TimeoutError after `limit_s` seconds."""
        async with asyncio.timeout(limit_s):
            await self.join()

    @property
    def pending(self) -> int:
        """Messages sent but not yet handled or dead-lettered."""
        return self._pending

    async def _dispatch(self, handler: Handler) -> None:
        slots = asyncio.Semaphore(self.concurrency)
        while True:
            await slots.acquire()
            try:
                message = await self._ready.get()
            except BaseException:
                slots.release()
                raise
            task = asyncio.create_task(self._deliver(handler, message, slots.release))
            self._deliveries.add(task)
            task.add_done_callback(self._deliveries.discard)

    async def _deliver(self, handler: Handler, message: _Message, release: Callable[[], None]) -> None:
        message.receive_count += 1
        try:
            await handler(json.loads(message.payload))
        except asyncio.CancelledError:
            message.receive_count -= 1  # interrupted by stop(), not failed: deliver it again later
            self._ready.put_nowait(message)
            raise
        except Exception as e:
            self._failed(message, e)
        else:
            self._settle()
        finally:
            release()

    def _failed(self, message: _Message, error: Exception) -> None:
        if message.receive_count < self.max_receive_count:
            log.warning(
                "queue message %s failed (receive %d of %d), redelivering",
                message.id,
                message.receive_count,
                self.max_receive_count,
                exc_info=error,
            )
            self._enqueue(message, self.retry_delay_s)
            return
        log.error(
            "queue message %s failed %d times, moved to the dead-letter list",
            message.id,
            message.receive_count,
            exc_info=error,
        )
        self.dead_letters.append((json.loads(message.payload), f"{type(error).__name__}: {error}"))
        self._settle()

    def _settle(self) -> None:
        self._pending -= 1
        if self._pending == 0:
            self._idle.set()
