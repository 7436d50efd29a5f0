"""One `stratus serve` per state directory.

The lock is an flock on `<state dir>/serve.lock`: the kernel drops it when its holder exits, however it
exits (SIGKILL included), so a lock is never stale and a restart after a crash just takes it. The file
holds the holder's pid, for the error message of a second server.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

LOCK_FILE = "serve.lock"


class StateDirInUse(RuntimeError):
    pass


class StateDirLock:
    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self._fd: int | None = None

    def __enter__(self) -> StateDirLock:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        # Not inherited by children (os.open's descriptors are close-on-exec): a leftover child never
        # holds the directory.
        fd = os.open(self.state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StateDirInUse(
                f"another `stratus serve` (pid {holder}) is using {self.state_dir}; "
                "stop it first, or pass another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        # The file stays: removing it would let a second server lock a new file while a third still
        # waits on the old one.
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None
