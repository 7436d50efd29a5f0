"""Finding what a previous `stratus serve` left behind: the process listing (/proc, or `ps` elsewhere) and the
embedded database's handling of an engine still on its data directory. Stand-in processes carry the
arguments a real engine and a real server have (a real engine is started by the e2e tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratus.local import processes
from stratus.local.embedded_db import EmbeddedDatabaseError, EmbeddedMongo, engines_serving

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX processes")

SLEEP = "import time; time.sleep(60)"
# A stand-in server (argv: stratus.local.cli serve <data dir>): starts a stand-in engine on the data dir,
# prints its pid, waits.
SERVER = """
import subprocess, sys, time
argv = ["-m", "secantus", "--port", "1", "--storage-path", sys.argv[3]]
engine = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *argv])
print(engine.pid, flush=True)
time.sleep(60)
"""


def engine_argv(data_dir: Path) -> list[str]:
    return ["-m", "secantus", "--port", "1", "--storage-path", str(data_dir)]


@pytest.fixture
def started() -> Iterator[list[int]]:
    """Pids to kill after the test, whatever happened."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        if processes.alive(pid):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.parametrize("source", ["proc", "ps"])
def test_the_process_listing_shows_argv_and_parent(
    source: str, monkeypatch: pytest.MonkeyPatch, started: list[int], tmp_path: Path
) -> None:
    if source == "ps":
        monkeypatch.setattr(processes, "PROC", tmp_path / "no-proc")
    elif not processes.PROC.is_dir():
        pytest.skip("no /proc here")
    child = subprocess.Popen([sys.executable, "-c", SLEEP, "--marker", "x"])
    started.append(child.pid)

    found = {p.pid: p for p in processes.processes()}

    assert found[child.pid].ppid == os.getpid()
    assert found[child.pid].argv[-2:] == ["--marker", "x"]


def test_an_orphaned_engine_on_the_data_dir_is_stopped(tmp_path: Path, started: list[int]) -> None:
    # GIVEN an engine on our data dir whose server is gone, and one on another dir
    ours = subprocess.Popen(
        [sys.executable, "-c", SLEEP, *engine_argv(tmp_path / "db")], start_new_session=True
    )
    other = subprocess.Popen([sys.executable, "-c", SLEEP, *engine_argv(tmp_path / "other")])
    started.extend([ours.pid, other.pid])
    assert [p.pid for p in engines_serving(tmp_path / "db")] == [ours.pid]

    EmbeddedMongo(tmp_path / "db").stop_leftovers()

    assert ours.wait(timeout=10) == -signal.SIGTERM  # asked to stop (the real engine checkpoints)
    assert other.poll() is None
    assert engines_serving(tmp_path / "db") == []


def test_an_engine_of_a_live_older_server_is_left_alone_with_a_clear_error(
    tmp_path: Path, started: list[int]
) -> None:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER, "stratus.local.cli", "serve", str(tmp_path / "db")],
        stdout=subprocess.PIPE,
        text=True,
    )
    started.append(server.pid)
    assert server.stdout is not None
    engine = int(server.stdout.readline())
    started.append(engine)

    with pytest.raises(EmbeddedDatabaseError, match=rf"another `stratus serve` \(pid {server.pid}\)"):
        EmbeddedMongo(tmp_path / "db").stop_leftovers()

    time.sleep(0.2)
    assert processes.alive(engine)
