"""The whole escape suite with every layer applied, the unprivileged uid included, where this machine
allows it (root, mount namespaces). A Python installed under a mode-0700 /root (pyenv as root, as on the
development machine) cannot be read by the sandbox uid, so the runner would keep uid 0 with no
capabilities and report the layer missing; here /root is made traversable in a private mount namespace
(a tmpfs of mode 0711 over it, with the Python installation bind-mounted back), nothing else changed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from stratus_worker.sandbox import confine
from stratus_worker.sandbox.pool import runner_env
from stratus_worker.sandbox.spec import SANDBOX_UID_BASE

pytestmark = pytest.mark.slow  # the escape suite in a fresh sandbox pool

ROOT = Path(__file__).resolve().parents[3]


def _command(tmp_path: Path) -> list[str]:
    suite = [sys.executable, "-m", "stratus_worker.sandbox.escapes"]
    prefix = os.path.realpath(sys.base_prefix)
    if not confine.readable_by(SANDBOX_UID_BASE, SANDBOX_UID_BASE, [prefix, sys.prefix]):
        return suite  # the uid can read Python as it is
    if not prefix.startswith("/root/") or shutil.which("unshare") is None:
        pytest.skip(f"the sandbox uid cannot read {prefix}, and it is not under /root")
    top = prefix.split("/")[2]  # /root/<top>/...: bind-mounted back over the tmpfs
    real = tmp_path / "real-root"
    real.mkdir()
    script = (
        f"mount --make-rprivate / && mount --bind /root {real} && mount -t tmpfs -o mode=0711 tmpfs /root"
        f" && mkdir /root/{top} && mount --bind {real}/{top} /root/{top} && exec {' '.join(suite)}"
    )
    return ["unshare", "--mount", "sh", "-c", script]


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to the sandbox uid needs root")
def test_every_layer_applies_and_every_escape_is_blocked(tmp_path: Path) -> None:
    env = {**runner_env(), "STRATUS_SANDBOX_RUNNERS": "1"}
    done = subprocess.run(_command(tmp_path), capture_output=True, text=True, timeout=600, cwd=ROOT, env=env)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-3000:]
    assert "FAIL" not in done.stdout
    isolation = json.loads(done.stdout.split("isolation:", 1)[1])
    assert isolation["user"] == "applied", isolation
    assert all(state.startswith("applied") for state in isolation.values()), isolation
