"""Child processes of `stratus serve` that end with it, even when it is killed (SIGKILL, OOM, a crash).

A graceful stop ends the children in order (see stratus.local.runtime); this covers the other cases. On
Linux each child asks the kernel for a signal when its parent dies (prctl PR_SET_PDEATHSIG, set between
fork and exec, kept across exec). Elsewhere there is no such call: the next `stratus serve` finds what
was left (see stratus.local.embedded_db).

The signal is tied to the *thread* that started the child: start children from a thread that lives as
long as the server (the event loop's), never from a worker thread (`asyncio.to_thread`).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable
from functools import cache
from typing import Any

_PR_SET_PDEATHSIG = 1


@cache
def _prctl() -> Any:
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    prctl.argtypes = [ctypes.c_int, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong, ctypes.c_ulong]
    prctl.restype = ctypes.c_int
    return prctl


def die_with_parent(sig: signal.Signals = signal.SIGKILL) -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive `sig` when this process dies (None off Linux).

    SIGKILL for children whose work is lost anyway; SIGTERM for one that must stop cleanly (the database
    checkpoints on SIGTERM).
    """
    if not sys.platform.startswith("linux"):
        return None
    prctl = _prctl()  # resolved here: the child only makes the call
    parent = os.getpid()

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before the request took effect: do not start
            os._exit(1)

    return preexec
