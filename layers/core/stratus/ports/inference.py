"""Inference port: run a task on a model served by warm workers (never in the API process).

Locally a long-running inference worker process (stratus_worker.inference.server); in AWS a SageMaker
asynchronous inference endpoint serving the same container.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from stratus.errors import DependencyFailed, DomainError, InvalidInput, NotFound, ValidationFailed


@dataclass(frozen=True)
class InferenceRequest:
    task: str
    model: str
    inputs: list[dict[str, Any]]
    options: dict[str, Any] = field(default_factory=dict)
    # A downloaded model's snapshot (prefix, files, architecture, commit); None for built-in models.
    source: dict[str, Any] | None = None

    def body(self) -> dict[str, Any]:
        """The inference server's request body (/invoke, /invocations)."""
        body = {"task": self.task, "model": self.model, "inputs": self.inputs, "options": self.options}
        return body if self.source is None else {**body, "source": self.source}


class InferenceResult(NamedTuple):
    outputs: list[dict[str, Any]]
    model: str
    batch_size: int = 1
    duration_ms: float | None = None


class InferencePending(Exception):
    """Not finished within the wait; `reference` lets the backend pick the result up later. `watch`:
    the storage keys whose completion notifications concern this invocation (SageMaker announces
    its output or failure object), so a notification can find the task waiting for it."""

    def __init__(self, reference: str, *, watch: tuple[str, ...] = ()) -> None:
        super().__init__(reference)
        self.reference = reference
        self.watch = watch


class InferenceBackend(Protocol):
    async def invoke(self, request: InferenceRequest, *, wait_s: float) -> InferenceResult:
        """Run the request. Raises NotFound (unknown model), ValidationFailed (wrong task or input),
        ServiceUnavailable (workers unreachable), or InferencePending past `wait_s`."""
        ...

    async def collect(self, reference: str) -> InferenceResult | None:
        """The result of a pending invocation, or None while it is still running."""
        ...

    async def catalogue(self) -> list[dict[str, Any]]:
        """The models the workers can serve (name, tasks, architecture, size, ...)."""
        ...


def worker_error(status: int, data: Mapping[str, Any]) -> DomainError:
    """The domain error for an inference worker's error answer (`{"error", "message", ...}`), by the
    HTTP status it came with: both adapters read the same server, directly or through S3."""
    message = str(data.get("message") or "Inference failed")
    if status == 404:
        return NotFound(message, code="MODEL_NOT_FOUND", details={"available": data.get("available", [])})
    if status == 422:
        return ValidationFailed(message, code=str(data.get("error", "VALIDATION_ERROR")).upper())
    if status == 400:
        return InvalidInput(message)
    return DependencyFailed(message, code="INFERENCE_FAILED")
