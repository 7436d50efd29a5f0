"""In-process job runs for the worker tests: a local object store, an in-memory event sink and a
JobContext, driven through the entrypoint's own `run_job`."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus.ports.events import Event
from stratus_worker.__main__ import run_job
from stratus_worker.events import JobEvents
from stratus_worker.runtime import JobContext


class MemorySink:
    """Keeps events; `on_publish` lets a test act when one arrives (e.g. request a stop)."""

    def __init__(self) -> None:
        self.events: list[Event] = []
        self.on_publish: Callable[[Event], None] | None = None

    def publish(self, event: Event) -> None:
        self.events.append(event)
        if self.on_publish:
            self.on_publish(event)

    def close(self) -> None:
        return None

    def of(self, detail_type: str) -> list[dict[str, Any]]:
        return [e.detail for e in self.events if e.detail_type == detail_type]

    @property
    def result(self) -> dict[str, Any]:
        assert self.events and self.events[-1].detail_type == "Stratus Job Result"
        return self.events[-1].detail


class Harness:
    """Uploads a dataset and runs one job in this process, as the entrypoint would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.storage = LocalDirectoryStorage(root / "objects", base_url="http://worker", signing_secret="x")
        self.sink = MemorySink()
        self.ctx: JobContext | None = None

    def upload(self, key: str, data: bytes) -> str:
        asyncio.run(self.storage.put_bytes(key, data))
        return key

    def run(self, params: dict[str, Any], *, kind: str = "training", job_id: str = "job-1") -> int:
        self.ctx = JobContext(
            job_id=job_id,
            params=params,
            output_prefix=f"models/{job_id}",
            workdir=self.root / "work" / job_id,
            storage=self.storage,
            events=JobEvents(self.sink, job_id),
        )
        self.ctx.workdir.mkdir(parents=True, exist_ok=True)
        return run_job(self.ctx, kind)

    def read_json(self, key: str) -> Any:
        return json.loads(asyncio.run(self.storage.get_bytes(key)))

    def exists(self, key: str) -> bool:
        return asyncio.run(self.storage.head(key)) is not None

    def read_rows(self, key: str) -> list[dict[str, Any]]:
        """A stored CSV's rows as text, as a client would send them for prediction."""
        text = asyncio.run(self.storage.get_bytes(key)).decode()
        return list(csv.DictReader(io.StringIO(text)))
