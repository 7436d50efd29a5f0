"""Job backend port: where container work runs (SageMaker training jobs, AWS Batch, local subprocesses)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, Protocol

BackendState = Literal["pending", "running", "completed", "failed", "stopped"]


@dataclass(frozen=True)
class JobSpec:
    """What a container job needs: which work (`kind`), its input, and where its outputs go."""

    job_id: str
    kind: str
    params: dict[str, Any]
    output_prefix: str
    max_runtime_s: int = 24 * 3600
    # What the kind needs (stratus.jobs.kinds.Resources): a GPU instance or queue, and memory.
    gpu: bool = False
    memory_mb: int = 4096
    env: dict[str, str] = field(default_factory=dict)


class JobHandle(NamedTuple):
    backend: str
    external_id: str


class BackendStatus(NamedTuple):
    state: BackendState
    reason: str | None = None


class JobBackend(Protocol):
    name: str

    async def submit(self, spec: JobSpec) -> JobHandle:
        """Start the job; raises ServiceUnavailable / DependencyFailed when the backend refuses."""
        ...

    async def stop(self, handle: JobHandle) -> None:
        """Ask the job to stop (it gets a grace period to checkpoint). Idempotent."""
        ...

    async def describe(self, handle: JobHandle) -> BackendStatus: ...
