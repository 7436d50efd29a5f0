"""The worker's two events, progress and result, and the sinks that carry them.

Locally each event is one JSON line (`Event.envelope()`) appended to a file the local backend tails;
in AWS it is an EventBridge PutEvents call. Either way the API sees the same envelope. `seq` numbers a
job's events from 1, because EventBridge delivers at least once and in no particular order: the
consumer keeps the highest seq it has seen and drops the rest.

A progress event that cannot be published is logged and skipped (a flaky bus must not cost a training
run); a result is retried, since it is the one event the API cannot do without.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from pathlib import Path
from typing import IO, Any, Literal, Protocol

from stratus.ports.events import Event, EventBus

PROGRESS = "Stratus Job Progress"
RESULT = "Stratus Job Result"
RESULT_ATTEMPTS = 3
RETRY_DELAY_S = 1.0

Phase = Literal["loading", "training", "saving", "downloading", "generating"]
Status = Literal["completed", "failed", "stopped"]

log = logging.getLogger(__name__)


class EventSink(Protocol):
    def publish(self, event: Event) -> None:
        """Deliver one event, or raise."""
        ...

    def close(self) -> None: ...


class FileSink:
    """Appends one envelope per line, flushed per line, so a reader tailing the file sees whole events."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._file: IO[str] = path.open("a", encoding="utf-8")

    def publish(self, event: Event) -> None:
        self._file.write(json.dumps(event.envelope(), separators=(",", ":"), allow_nan=False) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class BusSink:
    """Publishes through the EventBus port (EventBridge in AWS), one blocking call per event."""

    def __init__(self, bus: EventBus) -> None:
        self._bus = bus

    def publish(self, event: Event) -> None:
        asyncio.run(self._bus.publish([event]))

    def close(self) -> None:
        return None


class JobEvents:
    """One job's events: numbers them, cleans them into strict JSON and hands them to the sink."""

    def __init__(self, sink: EventSink, job_id: str) -> None:
        self.sink = sink
        self.job_id = job_id
        self.seq = 0

    def progress(
        self,
        phase: Phase,
        *,
        epoch: int,
        total_epochs: int,
        step: int,
        total_steps: int,
        progress: float,
        metrics: dict[str, float | None] | dict[str, Any],
    ) -> None:
        detail = {
            "phase": phase,
            "epoch": epoch,
            "total_epochs": total_epochs,
            "step": step,
            "total_steps": total_steps,
            "progress": round(min(max(progress, 0.0), 100.0), 2),
            "metrics": {name: value for name, value in metrics.items() if value is not None},
        }
        try:
            self._emit(PROGRESS, detail)
        except Exception:
            log.exception("could not publish a progress event of job %s", self.job_id)

    def download_progress(
        self, *, files_done: int, files_total: int, bytes_done: int, bytes_total: int
    ) -> None:
        """A download's progress: files as steps, bytes as the percentage and in the metrics."""
        self.progress(
            "downloading",
            epoch=0,
            total_epochs=0,
            step=files_done,
            total_steps=files_total,
            progress=100.0 * bytes_done / bytes_total
            if bytes_total
            else 100.0 * files_done / max(files_total, 1),
            metrics={"bytes_downloaded": float(bytes_done), "total_bytes": float(bytes_total)},
        )

    def result(self, status: Status, *, error: str | None, **fields: Any) -> None:
        """The job's last event. Raises if it could not be delivered after RESULT_ATTEMPTS tries."""
        detail = {"status": status, "error": error, **fields}
        for attempt in range(1, RESULT_ATTEMPTS + 1):
            try:
                self._emit(RESULT, detail)
                return
            except Exception:
                if attempt == RESULT_ATTEMPTS:
                    raise
                log.warning("publishing the result of job %s failed, retrying", self.job_id, exc_info=True)
                time.sleep(RETRY_DELAY_S * attempt)

    def _emit(self, detail_type: str, detail: dict[str, Any]) -> None:
        self.seq += 1  # never reused, even when delivery fails: a consumer only needs seq to grow
        body = {"job_id": self.job_id, "seq": self.seq, **strict_json(detail)}
        self.sink.publish(Event(detail_type=detail_type, detail=body))


def strict_json(value: Any) -> Any:
    """`value` with NaN and infinities (a diverged loss) as null: JSON has no spelling for them."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [strict_json(v) for v in value]
    return value


class ProgressGate:
    """Says when a progress event is due: whenever progress enters another 10% band."""

    def __init__(self) -> None:
        self._band = -1

    def crossed(self, progress: float) -> bool:
        band = int(progress // 10)
        if band > self._band:
            self._band = band
            return True
        return False
