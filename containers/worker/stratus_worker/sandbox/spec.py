"""The sandbox's settings and limits (imports nothing heavy)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from stratus_worker.sandbox.confine import LAYERS, Limits

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
    # Production: refuse to run user code when one of these layers could not be applied (locally the
    # report says what is missing). "all" (STRATUS_SANDBOX_REQUIRE=all) names every layer; in a
    # SageMaker container with network isolation the outer layer stands in for the network namespace,
    # so there STRATUS_SANDBOX_REQUIRE=rlimits,capabilities,no_new_privs,landlock,seccomp.
    required_layers: tuple[str, ...] = ()

    def refuses(self, missing: list[str]) -> list[str]:
        """The missing layers that forbid the run."""
        return [layer for layer in missing if layer in self.required_layers]

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> SandboxConfig:
        data = json.loads(text or "{}")
        limits = Limits(**data.pop("limits", {}))
        required = tuple(data.pop("required_layers", ()))
        return cls(limits=limits, required_layers=required, **data)

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
            required_layers=required_layers(env.get("STRATUS_SANDBOX_REQUIRE", "")),
        )


def required_layers(text: str) -> tuple[str, ...]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if names == ["all"]:
        return LAYERS
    unknown = sorted(set(names) - set(LAYERS))
    if unknown:
        raise ValueError(f"STRATUS_SANDBOX_REQUIRE: unknown layers {unknown}; known: {', '.join(LAYERS)}")
    return tuple(names)
