"""A warm pool of sandbox runner processes (stratus_worker.sandbox.runner), used by the inference server.

Each runner is a separate Python process started with a scrubbed environment (no credentials to
inherit, HF_HUB_OFFLINE set before transformers is imported) that handles one run at a time; runs
beyond the pool's size wait for a free runner. A runner that dies is replaced.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from stratus_worker.sandbox.spec import SandboxConfig

log = logging.getLogger("stratus_worker.sandbox")

_STREAM_LIMIT = 8 * 1024 * 1024  # one answer line: the capped result plus the output tail


def runner_env() -> dict[str, str]:
    """What a runner process starts with: where Python finds its code, and nothing secret."""
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "TOKENIZERS_PARALLELISM": "false",
        "OMP_NUM_THREADS": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    paths = [p for p in sys.path if p and os.path.isdir(p) and not p.endswith(".zip")]
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


class _Runner:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @property
    def alive(self) -> bool:
        return self.process.returncode is None


class SandboxPool:
    def __init__(self, config: SandboxConfig | None = None, *, base: Path | None = None) -> None:
        self.config = config or SandboxConfig.from_env()
        self._base = base
        self._idle: asyncio.Queue[_Runner] = asyncio.Queue()
        self._runners: list[_Runner] = []
        self._starting = asyncio.Lock()
        self._started = False
        self._own_base = False
        self.runs = 0

    async def start(self) -> None:
        async with self._starting:
            if self._started:
                return
            if self._base is None:
                self._base = Path(tempfile.mkdtemp(prefix="stratus-sandbox-"))
                self._own_base = True
            self._base.mkdir(parents=True, exist_ok=True)
            self._base.chmod(0o711)  # the sandbox uids may pass through to their own work dirs
            runners = await asyncio.gather(*(self._spawn(slot) for slot in range(self.config.runners)))
            for runner in runners:
                self._runners.append(runner)
                self._idle.put_nowait(runner)
            self._started = True

    async def _spawn(self, slot: int) -> _Runner:
        assert self._base is not None
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "stratus_worker.sandbox.runner", "--slot", str(slot),
            "--base", str(self._base), "--config", self.config.to_json(),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=None,
            env=runner_env(), limit=_STREAM_LIMIT, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        line = await process.stdout.readline()
        if not line or not json.loads(line).get("ready"):
            raise RuntimeError(f"sandbox runner {slot} failed to start")
        runner = _Runner(process)
        runner.slot = slot  # type: ignore[attr-defined]
        return runner

    async def run(
        self,
        *,
        tokenizer_code: str,
        model_code: str,
        function_code: str,
        input_text: str,
        models: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> dict[str, Any]:
        """Run custom code in a fresh confined child: {"ok", "result" | "error" + "reason",
        "isolation", "stdout", "duration_ms"}."""
        await self.start()
        request = {
            "id": uuid.uuid4().hex,
            "tokenizer_code": tokenizer_code,
            "model_code": model_code,
            "function_code": function_code,
            "input_text": input_text,
            "models": models or {},
            "timeout_s": timeout_s,
        }
        runner = await self._idle.get()
        try:
            answer = await self._ask(runner, request)
        except (OSError, RuntimeError, ValueError, EOFError) as e:
            log.warning("sandbox runner failed: %s; replacing it", e)
            with contextlib.suppress(ProcessLookupError):
                runner.process.kill()
            replacement = await self._spawn(getattr(runner, "slot", 0))
            self._runners = [replacement if r is runner else r for r in self._runners]
            runner = replacement
            answer = {"ok": False, "reason": "runner_error", "error": "The sandbox runner failed; please retry",
                      "isolation": {}}  # fmt: skip
        finally:
            self._idle.put_nowait(runner)
        self.runs += 1
        return answer

    @staticmethod
    async def _ask(runner: _Runner, request: dict[str, Any]) -> dict[str, Any]:
        process = runner.process
        assert process.stdin is not None
        assert process.stdout is not None
        if not runner.alive:
            raise RuntimeError("runner exited")
        process.stdin.write((json.dumps(request) + "\n").encode())
        await process.stdin.drain()
        line = await process.stdout.readline()
        if not line:
            raise EOFError("runner closed its output")
        answer: dict[str, Any] = json.loads(line)
        return answer

    async def close(self) -> None:
        for runner in self._runners:
            if runner.alive:
                with contextlib.suppress(ProcessLookupError):
                    runner.process.kill()
                with contextlib.suppress(Exception):
                    await runner.process.wait()
        self._runners.clear()
        self._started = False
        if self._own_base and self._base is not None:
            shutil.rmtree(self._base, ignore_errors=True)
            self._base, self._own_base = None, False
