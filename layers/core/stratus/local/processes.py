"""The machine's processes, as far as `stratus serve` needs to find what a previous run left behind.

Linux reads /proc; other systems (macOS) ask `ps`, whose command column loses the boundaries between
arguments that contain spaces (such a process is then not recognised, and the caller's error says why).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    ppid: int
    argv: list[str]


def processes() -> Iterator[Process]:
    """Every process this user can see (those that exit meanwhile are skipped)."""
    if PROC.is_dir():
        for entry in PROC.iterdir():
            if entry.name.isdigit():
                with contextlib.suppress(OSError, ValueError, IndexError):
                    raw = (entry / "cmdline").read_bytes()
                    yield Process(
                        int(entry.name), _proc_stat(entry)[1], raw.decode(errors="replace").split("\0")[:-1]
                    )
        return
    ps = shutil.which("ps")
    if ps is None:
        return
    listing = subprocess.run(  # noqa: S603 - fixed argv
        [ps, "-ax", "-ww", "-o", "pid=,ppid=,command="], capture_output=True, text=True, check=False
    ).stdout
    for line in listing.splitlines():
        pid, ppid, *argv = line.split()
        yield Process(int(pid), int(ppid), argv)


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie (exited, not yet reaped by its new parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return _proc_stat(PROC / str(pid))[0] != "Z"
    return True


def terminate(pid: int, grace_s: float) -> None:
    """SIGTERM, then SIGKILL past `grace_s`; returns once it is gone. Raises PermissionError if it is not
    ours to signal."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        if not alive(pid):
            return


def _proc_stat(entry: Path) -> tuple[str, int]:
    """(state, parent pid) from /proc/<pid>/stat; the command name before them may contain anything."""
    fields = entry.joinpath("stat").read_text().rsplit(")", 1)[1].split()
    return fields[0], int(fields[1])
