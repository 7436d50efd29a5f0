"""What the inference side raises. Each error knows its HTTP status and a stable `code`, so the server
maps them in one place (`to_dict` is the response body)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class InferenceError(Exception):
    """Base of every error a caller may see; `message` is safe to show."""

    code = "inference_error"
    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def to_dict(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message}


class ModelNotFound(InferenceError):
    """The model is not in the catalogue (404); `available` lists what is."""

    code = "model_not_found"
    status = 404

    def __init__(self, name: str, available: Sequence[str]) -> None:
        super().__init__(f"Unknown model '{name}'. Available models: {', '.join(available)}")
        self.name = name
        self.available = list(available)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "available": self.available}


class WrongTask(InferenceError):
    """The model exists but does not serve the task (422)."""

    code = "wrong_task"
    status = 422

    def __init__(self, model: str, task: str, supported: Sequence[str]) -> None:
        super().__init__(
            f"Model '{model}' does not serve the '{task}' task; it serves: {', '.join(supported)}"
        )
        self.model = model
        self.task = task
        self.supported = list(supported)

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "model": self.model,
            "task": self.task,
            "supported_tasks": self.supported,
        }


class UnknownTask(InferenceError):
    """No such task at all (400)."""

    code = "unknown_task"
    status = 400

    def __init__(self, task: str, tasks: Sequence[str]) -> None:
        super().__init__(f"Unknown task '{task}'. Tasks: {', '.join(tasks)}")
        self.tasks = list(tasks)

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "tasks": self.tasks}


class InvalidInput(InferenceError):
    """An input item or an option is missing or malformed (400)."""

    code = "invalid_input"
    status = 400


class ModelUnavailable(InferenceError):
    """The model's files cannot be obtained: hub offline or unreachable, files missing (503)."""

    code = "model_unavailable"
    status = 503
