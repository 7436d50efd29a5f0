"""Custom tasks' limits, the export format, and how a sandbox run becomes a task record's outcome (read by
the API; the worker's sandbox has its own copy of the task name and code limit; nothing heavy here)."""

from __future__ import annotations

from typing import Any

TASK = "custom"  # the inference task name (stratus_worker.sandbox.spec.TASK)
DEFAULT_MODEL = "custom"  # a run's `model` when its task names none
MAX_CODE_CHARS = 100_000
MAX_INPUT_CHARS = 100_000
MAX_NAME_CHARS = 200
MAX_DESCRIPTION_CHARS = 2_000
MAX_TAGS = 20
MAX_TAG_CHARS = 50
MAX_EXPORT_TASKS = 500
MAX_IMPORT_BYTES = 5 * 1024 * 1024

EXPORT_FORMAT = "stratus.custom-tasks"
EXPORT_VERSION = 1
# Fields a task carries in an export file (and takes from an import).
PORTABLE_FIELDS = (
    "name",
    "description",
    "tags",
    "tokenizer_code",
    "model_code",
    "function_code",
    "model_name",
)


def outcome(outputs: list[dict[str, Any]]) -> dict[str, Any]:
    """A sandbox run's answer -> the task record's outcome: completed with custom_function's JSON
    result, or failed with the reason (which layer or limit stopped it) and the error."""
    output = outputs[0] if outputs else {}
    common = {
        "isolation": output.get("isolation") or {},
        "stdout": str(output.get("stdout") or ""),
        "duration_ms": output.get("duration_ms"),
    }
    if output.get("ok"):
        return {**common, "status": "completed", "result": output.get("result")}
    return {
        **common,
        "status": "failed",
        "result": None,
        "reason": str(output.get("reason") or "error"),
        "error": str(output.get("error") or "The custom code failed"),
    }
