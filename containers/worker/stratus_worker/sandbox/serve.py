"""The inference server's `custom` task: user code from a custom task, run in the sandbox pool.

    POST /invoke {"task": "custom", "model": <the task's model name or "custom">,
                  "inputs": [{"tokenizer_code", "model_code", "function_code", "input_text"}],
                  "options": {"timeout_s"?}, "source"?: {"models": [downloaded model sources]}}
    -> outputs: [{"ok", "result" | "error" + "reason", "isolation", "stdout", "duration_ms"}]

A run that fails (blocked, limit reached, an exception in the code) is still a 200 answer: its output
says why (`ok` false); the API records the task as failed with that reason.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from stratus_worker.inference import downloaded
from stratus_worker.inference.errors import InvalidInput
from stratus_worker.sandbox.pool import SandboxPool
from stratus_worker.sandbox.spec import MAX_CODE_CHARS, TASK

__all__ = ["TASK", "CustomTasks"]

_FIELDS = ("tokenizer_code", "model_code", "function_code")


def _invalid(message: str) -> InvalidInput:
    return InvalidInput(message)


def _readable_to_all(path: Path) -> None:
    """The copy is made private (mkdtemp); the sandbox uids must read it. Which run may read which model
    is Landlock's business: a run's rules name only the models its request maps."""
    for entry in [path, *path.rglob("*")]:
        if not entry.is_symlink():
            entry.chmod(0o755 if entry.is_dir() else 0o644)


class CustomTasks:
    def __init__(self, storage: Callable[[], Any], cache_dir: Path, pool: SandboxPool | None = None) -> None:
        self._storage = storage
        self._cache_dir = cache_dir
        self.pool = pool or SandboxPool()

    async def _models(self, source: Any) -> dict[str, str]:
        """The user's downloaded models named by the request: name -> local snapshot directory."""
        if source is None:
            return {}
        if not isinstance(source, Mapping) or not isinstance(source.get("models", []), list):
            raise _invalid("'source' must be {\"models\": [...]}")
        found: dict[str, str] = {}
        for entry in source.get("models", []):
            checked = downloaded.check_source(entry)
            name = checked.get("name")
            if not isinstance(name, str):
                raise _invalid("each model source needs its 'name'")
            path = await asyncio.to_thread(downloaded.fetch, self._storage(), checked, self._cache_dir)
            await asyncio.to_thread(_readable_to_all, path)
            found[name] = str(path)
        return found

    async def run(self, inputs: list[Any], options: Mapping[str, Any], source: Any) -> list[dict[str, Any]]:
        if len(inputs) != 1 or not isinstance(inputs[0], Mapping):
            raise _invalid("a custom task takes one input")
        item = inputs[0]
        code = {field: item.get(field) or "" for field in _FIELDS}
        if not all(isinstance(value, str) and len(value) <= MAX_CODE_CHARS for value in code.values()):
            raise _invalid(f"code fields must be strings of at most {MAX_CODE_CHARS} characters")
        text = item.get("input_text", "")
        if not isinstance(text, str):
            raise _invalid("'input_text' must be a string")
        timeout = options.get("timeout_s")
        if timeout is not None and not isinstance(timeout, int | float):
            raise _invalid("'timeout_s' must be a number")
        answer = await self.pool.run(
            **code, input_text=text, models=await self._models(source), timeout_s=timeout
        )
        answer.pop("id", None)
        return [answer]

    async def close(self) -> None:
        await self.pool.close()
