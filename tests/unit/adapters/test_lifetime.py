"""die_with_parent: a child started with it ends when the process that started it is killed outright
(SIGKILL: no handler, no cleanup), with the signal asked for. Real processes: this test starts a parent,
the parent starts the child, and the test kills the parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stratus.local.processes import alive

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")

# The parent: starts the child (argv: the signal's name or "none", the marker path), prints the child's
# pid, then waits to be killed.
PARENT = """
import signal, subprocess, sys, time
from stratus.adapters.local.lifetime import die_with_parent
preexec = None if sys.argv[1] == "none" else die_with_parent(signal.Signals[sys.argv[1]])
child = subprocess.Popen([sys.executable, "-c", CHILD, sys.argv[2]], preexec_fn=preexec, start_new_session=True)
print(child.pid, flush=True)
time.sleep(60)
"""
# The child: on SIGTERM it writes the marker (where it could checkpoint), then exits.
CHILD = """
import pathlib, signal, sys, time
def on_term(*_):
    pathlib.Path(sys.argv[1]).write_text("terminated")
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
time.sleep(60)
"""


def _start_family(sig: str, marker: Path) -> tuple[subprocess.Popen[str], int]:
    parent = subprocess.Popen(
        [sys.executable, "-c", f"CHILD = {CHILD!r}\n{PARENT}", sig, str(marker)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert parent.stdout is not None
    return parent, int(parent.stdout.readline())


def _wait_gone(pid: int, limit_s: float = 10) -> bool:
    deadline = time.monotonic() + limit_s
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(pid)


@pytest.mark.parametrize("sig", ["SIGKILL", "SIGTERM"])
def test_the_child_gets_the_signal_when_its_parent_is_killed(tmp_path: Path, sig: str) -> None:
    marker = tmp_path / "marker"
    parent, child = _start_family(sig, marker)
    try:
        time.sleep(0.5)  # the child installs its SIGTERM handler
        assert alive(child)

        parent.kill()
        parent.wait()

        assert _wait_gone(child), "the child outlived its parent"
        # SIGTERM lets it clean up (the database checkpoints there); SIGKILL does not
        assert marker.exists() == (sig == "SIGTERM")
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


def test_without_it_a_child_outlives_its_parent(tmp_path: Path) -> None:
    """The control: the same family without the parent-death signal leaves the child running."""
    parent, child = _start_family("none", tmp_path / "marker")
    try:
        parent.kill()
        parent.wait()
        assert not _wait_gone(child, limit_s=1)
    finally:
        os.kill(child, signal.SIGKILL)
