"""Production's setting: a run is refused, before any user code runs, when a layer it requires could not
be applied; without the requirement the same run goes ahead and its report says what was missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from stratus_worker.sandbox.pool import runner_env
from stratus_worker.sandbox.spec import SandboxConfig, required_layers

pytestmark = pytest.mark.slow  # each runner imports torch

ROOT = Path(__file__).resolve().parents[3]
MARKER_CODE = "def custom_function(text):\n    open('ran.txt', 'w').write('x')\n    return 'ran'"


def _runs(config: SandboxConfig, base: Path) -> dict[str, object]:
    base.mkdir()
    request = json.dumps({"id": "1", "function_code": MARKER_CODE, "input_text": ""})
    done = subprocess.run(
        [sys.executable, "-m", "stratus_worker.sandbox.runner", "--base", str(base), "--config", config.to_json()],
        input=request + "\n", capture_output=True, text=True, timeout=300, cwd=ROOT, env=runner_env(),
    )  # fmt: skip
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert lines[0]["ready"] is True, done.stderr[-2000:]
    answer: dict[str, object] = lines[1]
    return answer


def test_a_missing_required_layer_refuses_the_run(tmp_path: Path) -> None:
    no_netns = SandboxConfig(network_namespace=False, required_layers=("network_namespace", "seccomp"))
    refused = _runs(no_netns, tmp_path / "required")
    assert refused["ok"] is False and refused["reason"] == "isolation_missing", str(refused)
    assert "network_namespace" in str(refused["error"])
    assert str(refused["isolation"]["network_namespace"]).startswith("missing")  # type: ignore[index]

    reported = _runs(SandboxConfig(network_namespace=False), tmp_path / "reported")
    assert reported["ok"] is True and reported["result"] == "ran", str(reported)
    assert str(reported["isolation"]["network_namespace"]).startswith("missing")  # type: ignore[index]


def test_required_layers_are_named_or_all() -> None:
    assert required_layers("") == ()
    assert "seccomp" in required_layers("all") and "landlock" in required_layers("all")
    assert required_layers("landlock, seccomp") == ("landlock", "seccomp")
    with pytest.raises(ValueError, match="unknown layers"):
        required_layers("landlock,firewall")
    assert SandboxConfig.from_env({"STRATUS_SANDBOX_REQUIRE": "seccomp"}).required_layers == ("seccomp",)
