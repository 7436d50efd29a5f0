"""Job kinds: what the pipeline needs to know about each kind of container work, declared by the
capability that owns it (its spec module) and looked up here by name.

A spec module imports nothing heavy: the API, the event intake and the worker all read the same specs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, NamedTuple

from stratus.errors import InvalidInput

# The queue message that asks the dispatcher to start a job of any kind.
START_MESSAGE = "job.start"


class Resources(NamedTuple):
    """What one run needs. `gpu` picks the GPU instance type (SageMaker) or the GPU job queue (Batch)."""

    gpu: bool = False
    memory_mb: int = 4096
    max_runtime_s: int = 6 * 3600


class JobWebhooks(NamedTuple):
    """The webhook event each stage of this kind emits (None: that stage emits none)."""

    started: str | None = None
    progress: str | None = None
    completed: str | None = None
    failed: str | None = None


# (models repository, job, result event detail) -> the registered model document
RegisterResult = Callable[[Any, Mapping[str, Any], Mapping[str, Any]], Awaitable[dict[str, Any]]]
# job -> the kind's fields of a progress message (WebSocket, event log, webhooks)
ProgressView = Callable[[Mapping[str, Any]], dict[str, Any]]


# (job, final metrics) -> what the completed webhook adds (training: its accuracy)
CompletedView = Callable[[Mapping[str, Any], Mapping[str, Any]], dict[str, Any]]
# job -> what every webhook of this kind adds (a download: the model's name)
WebhookFields = Callable[[Mapping[str, Any]], dict[str, Any]]


def no_extra_progress(job: Mapping[str, Any]) -> dict[str, Any]:
    return {}


def no_completed_fields(job: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {}


class JobKind(NamedTuple):
    name: str
    # The worker module (in the container image) whose run(ctx) -> Outcome executes this kind.
    worker: str
    resources: Resources = Resources()
    webhooks: JobWebhooks = JobWebhooks()
    # What a completed result registers (a model, say); None: the result is the job's own fields.
    register_result: RegisterResult | None = None
    progress_view: ProgressView = no_extra_progress
    completed_view: CompletedView = no_completed_fields
    webhook_fields: WebhookFields = no_extra_progress


class JobKinds:
    """The registry of kinds, built once from the capabilities' specs."""

    def __init__(self, kinds: Iterable[JobKind]) -> None:
        self._kinds: dict[str, JobKind] = {}
        for kind in kinds:
            if kind.name in self._kinds:
                raise ValueError(f"job kind {kind.name!r} is declared twice")
            self._kinds[kind.name] = kind

    def get(self, name: str) -> JobKind:
        kind = self._kinds.get(name)
        if kind is None:
            raise InvalidInput(f"Unknown job kind '{name}'; known kinds: {', '.join(sorted(self._kinds))}")
        return kind

    def find(self, name: str | None) -> JobKind | None:
        return self._kinds.get(name or "")

    def names(self) -> tuple[str, ...]:
        return tuple(self._kinds)

    def workers(self) -> dict[str, str]:
        """kind -> worker module: what the container entrypoint runs."""
        return {name: kind.worker for name, kind in self._kinds.items()}
