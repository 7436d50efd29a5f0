"""Event bus port (EventBridge in AWS, an in-process bus with the same pattern matching locally)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

# Our own events carry this source; AWS services' events carry theirs (aws.sagemaker, aws.batch).
STRATUS_SOURCE = "stratus.jobs"


@dataclass(frozen=True)
class Event:
    """One event, in EventBridge's envelope terms."""

    detail_type: str
    detail: dict[str, Any]
    source: str = STRATUS_SOURCE
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    time: datetime = field(default_factory=lambda: datetime.now(UTC))

    def envelope(self) -> dict[str, Any]:
        """The event as EventBridge delivers it to targets (the shape patterns are matched against)."""
        return {
            "version": "0",
            "id": self.id,
            "source": self.source,
            "detail-type": self.detail_type,
            "time": self.time.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "detail": self.detail,
        }

    @classmethod
    def from_envelope(cls, envelope: dict[str, Any]) -> Event:
        raw_time = envelope.get("time")
        when = datetime.fromisoformat(raw_time.replace("Z", "+00:00")) if raw_time else datetime.now(UTC)
        return cls(
            detail_type=envelope["detail-type"],
            detail=dict(envelope.get("detail") or {}),
            source=envelope["source"],
            id=envelope.get("id") or str(uuid.uuid4()),
            time=when,
        )


class EventBus(Protocol):
    async def publish(self, events: Sequence[Event]) -> None:
        """Publish events; raises ServiceUnavailable when the bus cannot be reached."""
        ...
