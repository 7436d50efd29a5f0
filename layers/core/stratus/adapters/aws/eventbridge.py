"""EventBus on EventBridge `PutEvents`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import translate
from stratus.errors import InvalidInput, ServiceUnavailable
from stratus.ports.events import Event

MAX_ENTRIES_PER_CALL = 10
# PutEvents caps the whole request at 256 KiB, counted with EventBridge's own entry-size formula.
MAX_REQUEST_BYTES = 256 * 1024
RETRY_DELAY_S = 0.2


class EventBridgeBus:
    def __init__(self, client: Any, bus_name: str) -> None:
        self._client = client
        self.bus_name = bus_name

    async def publish(self, events: Sequence[Event]) -> None:
        """Publish in as few PutEvents calls as the limits allow.

        Entries EventBridge fails individually (FailedEntryCount) are retried once; if any still fail,
        ServiceUnavailable. EventBridge assigns its own event ids: `Event.id` does not travel.
        """
        # Batched up front, so an oversized event is refused before any of its neighbours is published.
        batches = list(_batches([self._entry(event) for event in events]))
        for batch in batches:
            failed = await self._put(batch)
            if failed:
                await asyncio.sleep(RETRY_DELAY_S)
                failed = await self._put([entry for entry, _ in failed])
            if failed:
                codes = sorted({str(result.get("ErrorCode")) for _, result in failed})
                raise ServiceUnavailable(
                    f"Event bus refused {len(failed)} event(s), please retry", details={"aws_errors": codes}
                )

    def _entry(self, event: Event) -> dict[str, Any]:
        return {
            "Source": event.source,
            "DetailType": event.detail_type,
            "Detail": json.dumps(event.detail, separators=(",", ":"), default=str),
            "Time": event.time,
            "EventBusName": self.bus_name,
        }

    async def _put(self, entries: list[dict[str, Any]]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
        """PutEvents once; the entries that failed, each with its result (ErrorCode, ErrorMessage)."""
        try:
            response = await asyncio.to_thread(self._client.put_events, Entries=entries)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "event bus") from e
        if not response.get("FailedEntryCount"):
            return []
        results = response.get("Entries") or []
        return [
            (entry, result)
            for entry, result in zip(entries, results, strict=False)
            if result.get("ErrorCode")
        ]


def entry_size(entry: dict[str, Any]) -> int:
    """EventBridge's documented size of one PutEvents entry."""
    size = 14  # the Time field
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name, "")).encode())
    size += sum(len(str(resource).encode()) for resource in entry.get("Resources", ()))
    return size


def _batches(entries: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    batch_bytes = 0
    for entry in entries:
        size = entry_size(entry)
        if size > MAX_REQUEST_BYTES:
            raise InvalidInput(f"Event {entry['DetailType']!r} exceeds the {MAX_REQUEST_BYTES}-byte limit")
        if batch and (len(batch) == MAX_ENTRIES_PER_CALL or batch_bytes + size > MAX_REQUEST_BYTES):
            yield batch
            batch, batch_bytes = [], 0
        batch.append(entry)
        batch_bytes += size
    if batch:
        yield batch
