"""One `stratus serve` per state directory: a second one is refused with the holder's pid, and the lock of a
server that was killed outright is free at once (the kernel drops it), so a restart never finds it stale."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from stratus.local.state_dir import LOCK_FILE, StateDirInUse, StateDirLock

HOLDER = """
import sys, time
from pathlib import Path
from stratus.local.state_dir import StateDirLock
with StateDirLock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(60)
"""


def test_a_second_holder_is_refused_until_the_first_lets_go(tmp_path: Path) -> None:
    refused = rf"another `stratus serve` \(pid {os.getpid()}\) is using"
    with StateDirLock(tmp_path / "state"), pytest.raises(StateDirInUse, match=refused):
        StateDirLock(tmp_path / "state").__enter__()
    with StateDirLock(tmp_path / "state"):
        assert (tmp_path / "state" / LOCK_FILE).read_text() == f"{os.getpid()}\n"


def test_the_lock_of_a_killed_server_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
    with pytest.raises(StateDirInUse, match=rf"\(pid {holder.pid}\)"):
        StateDirLock(tmp_path).__enter__()

    holder.kill()
    holder.wait()

    # THEN the file still names the dead holder, but the lock is free
    assert (tmp_path / LOCK_FILE).read_text() == f"{holder.pid}\n"
    with StateDirLock(tmp_path):
        assert (tmp_path / LOCK_FILE).read_text() == f"{os.getpid()}\n"
