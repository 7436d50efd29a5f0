"""What a job kind is handed (JobContext) and the ways it can end.

A kind returns an Outcome when it completes, raises JobFailed with a reason meant for the user, or
raises JobStopped once it has checkpointed after SIGTERM (what SageMaker, Batch and the local backend
send to stop a job). The SIGTERM handler only sets `should_stop`: the kind decides where it is safe
to stop, so a checkpoint is never written from the middle of an optimizer step.
"""

from __future__ import annotations

import json
import signal
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from stratus.ports.storage import ObjectStorage
from stratus_worker.events import JobEvents


@dataclass(frozen=True)
class JobEnv:
    """The job as the backend described it in the environment (see `stratus.adapters.job_env`)."""

    job_id: str
    kind: str
    params: dict[str, Any]
    output_prefix: str
    workdir: Path

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> JobEnv:
        """ValueError naming what is missing or malformed."""
        missing = [name for name in ("STRATUS_JOB_ID", "STRATUS_JOB_KIND") if not environ.get(name)]
        if missing:
            raise ValueError(f"missing environment variable(s): {', '.join(missing)}")
        try:
            params = json.loads(environ.get("STRATUS_JOB_PARAMS") or "{}")
        except json.JSONDecodeError as e:
            raise ValueError(f"STRATUS_JOB_PARAMS is not valid JSON: {e}") from None
        if not isinstance(params, dict):
            raise ValueError("STRATUS_JOB_PARAMS must be a JSON object")
        job_id = environ["STRATUS_JOB_ID"]
        workdir = environ.get("STRATUS_JOB_WORKDIR") or tempfile.mkdtemp(prefix=f"stratus-{job_id}-")
        return cls(
            job_id=job_id,
            kind=environ["STRATUS_JOB_KIND"],
            params=params,
            output_prefix=environ.get("STRATUS_OUTPUT_PREFIX", "").strip("/"),
            workdir=Path(workdir),
        )


@dataclass
class JobContext:
    job_id: str
    params: dict[str, Any]
    output_prefix: str
    workdir: Path
    storage: ObjectStorage
    events: JobEvents
    should_stop: bool = False  # set by SIGTERM; kinds poll it
    started: float = field(default_factory=time.monotonic)

    def artifact_key(self, name: str) -> str:
        return f"{self.output_prefix}/{name}" if self.output_prefix else name

    def elapsed(self) -> float:
        return round(time.monotonic() - self.started, 3)

    def install_stop_handler(self) -> None:
        """SIGTERM sets `should_stop` (main thread only, which is where the worker runs its kinds)."""

        def on_term(_signum: int, _frame: FrameType | None) -> None:
            self.should_stop = True

        signal.signal(signal.SIGTERM, on_term)


@dataclass
class Outcome:
    """What a result event reports. Partly filled when a job fails or stops midway."""

    final_metrics: dict[str, Any] = field(default_factory=dict)
    history: dict[str, list[float]] = field(default_factory=dict)
    baseline: dict[str, float] = field(default_factory=dict)
    artifacts: dict[str, str] = field(default_factory=dict)
    model: dict[str, Any] | None = None


class JobFailed(Exception):
    """An expected failure; `reason` is shown to the user as is."""

    def __init__(self, reason: str, outcome: Outcome | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.outcome = outcome or Outcome()


class JobStopped(Exception):
    """Stopped on request, after saving what could be saved (`outcome.artifacts`)."""

    def __init__(self, outcome: Outcome | None = None) -> None:
        super().__init__("stopped")
        self.outcome = outcome or Outcome()
