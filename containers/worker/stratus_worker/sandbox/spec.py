"""The sandbox's settings and limits (imports nothing heavy)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from stratus_worker.sandbox.confine import Limits

TASK = "custom"  # the inference server's task name for custom code
ENTRYPOINT = "custom_function"
MAX_RESULT_BYTES = 1024 * 1024  # the child's JSON result
MAX_STDOUT_TAIL = 4096  # what is kept of what the code printed
MAX_CODE_CHARS = 100_000
SANDBOX_UID_BASE = 61000  # one unprivileged uid per runner slot (no account needed)


@dataclass(frozen=True)
class SandboxConfig:
    runners: int = 2
    timeout_s: float = 30.0
    limits: Limits = field(default_factory=Limits)
    network_namespace: bool = True
    # Production: refuse to run user code when any layer could not be applied (else: report it).
    require_isolation: bool = False

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        data = json.loads(text or "{}")
        limits = Limits(**data.pop("limits", {}))
        return cls(limits=limits, **data)

    @classmethod
    def from_env(cls, env: Mapping[str, str] = os.environ) -> SandboxConfig:
        """STRATUS_SANDBOX_* (the worker's settings; the API passes none of them)."""

        def number(name: str, default: float) -> float:
            return float(env.get(f"STRATUS_SANDBOX_{name}", default))

        default = Limits()
        return cls(
            runners=int(number("RUNNERS", 2)),
            timeout_s=number("TIMEOUT_S", 30.0),
            limits=Limits(
                cpu_s=int(number("CPU_S", default.cpu_s)),
                memory_mb=int(number("MEMORY_MB", default.memory_mb)),
                processes=int(number("PROCESSES", default.processes)),
                file_mb=int(number("FILE_MB", default.file_mb)),
                open_files=int(number("OPEN_FILES", default.open_files)),
            ),
            network_namespace=env.get("STRATUS_SANDBOX_NETNS", "1") != "0",
            require_isolation=env.get("STRATUS_SANDBOX_REQUIRE_ISOLATION", "0") == "1",
        )
