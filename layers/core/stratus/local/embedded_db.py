"""The embedded MongoDB-compatible engine (SecantusDB) for the local runtime.

It runs as a child process on a data directory under the state folder and speaks the MongoDB wire
protocol, so the app uses exactly the pymongo code path it uses against Atlas or DocumentDB.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from stratus.adapters.local.lifetime import die_with_parent
from stratus.local import processes

# The engine takes a few seconds to checkpoint WiredTiger on a graceful stop.
STOP_GRACE_S = 20.0

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


class EmbeddedDatabaseError(RuntimeError):
    pass


class EmbeddedMongo:
    def __init__(self, data_dir: Path, *, host: str = "127.0.0.1", port: int | None = None) -> None:
        self.data_dir = data_dir
        self.host = host
        self.port = port or free_port(host)
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        # Retryable writes slow this engine down over time (see the local-stack notes).
        return f"mongodb://{self.host}:{self.port}/?retryWrites=false&directConnection=true"

    def start(self, timeout_s: float = 30.0) -> str:
        """Stop a leftover engine on this data directory, start ours and wait until it answers."""
        self.stop_leftovers()
        self.spawn()
        return self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the engine without waiting for it. Call it from a thread that lives as long as the
        server (the engine is stopped when that thread's process dies, see lifetime.py)."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with (self.data_dir.parent / "database.log").open("ab") as out:
            # Its own process group: Ctrl-C in the terminal reaches us, and we stop it in order.
            self._process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                [
                    sys.executable,
                    "-m",
                    "secantus",
                    "--host",
                    self.host,
                    "--port",
                    str(self.port),
                    "--storage-path",
                    str(self.data_dir),
                    "--log-level",
                    "WARNING",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                # SIGTERM, not SIGKILL: if we die, it still checkpoints before it exits.
                preexec_fn=die_with_parent(signal.SIGTERM),
            )

    def stop_leftovers(self) -> None:
        """Stop an engine still serving this data directory after the server that started it died
        (killed on a system without a parent-death signal, or by a version of Stratus without one).
        The caller holds the state directory (see state_dir.py), so no live server of this version
        owns it; one of an older version would, and is left alone with a clear error."""
        for engine in engines_serving(self.data_dir):
            owner = next((p for p in processes.processes() if p.pid == engine.ppid), None)
            if owner is not None and _is_stratus_serve(owner.argv):
                raise EmbeddedDatabaseError(
                    f"another `stratus serve` (pid {owner.pid}) is using {self.data_dir}; stop it first"
                )
            log.warning(
                "stopping the database engine (pid %d) a previous `stratus serve` left running", engine.pid
            )
            try:
                processes.terminate(engine.pid, STOP_GRACE_S)
            except PermissionError as e:
                raise EmbeddedDatabaseError(
                    f"a database engine of another user (pid {engine.pid}) is using {self.data_dir}"
                ) from e

    def wait_ready(self, timeout_s: float = 30.0) -> str:
        """Wait until the spawned engine answers; returns its URI."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self._process.returncode}; "
                    f"see {self.data_dir.parent / 'database.log'}"
                )
            client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return self.uri
            except PyMongoError:
                time.sleep(0.2)
            finally:
                client.close()
        self.stop()
        raise EmbeddedDatabaseError(f"the embedded database did not answer within {timeout_s:.0f}s")

    def stop(self) -> None:
        """Graceful stop (SIGTERM lets WiredTiger checkpoint), SIGKILL only past the grace period."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def engines_serving(data_dir: Path) -> list[processes.Process]:
    """The SecantusDB processes whose storage path is `data_dir`."""
    target = data_dir.resolve()
    found = []
    for process in processes.processes():
        argv = process.argv
        if "secantus" not in argv or "--storage-path" not in argv[:-1]:
            continue
        with contextlib.suppress(OSError):
            if Path(argv[argv.index("--storage-path") + 1]).resolve() == target:
                found.append(process)
    return found


def _is_stratus_serve(argv: list[str]) -> bool:
    """`stratus serve ...` or `python -m stratus.local.cli serve ...`."""
    return "serve" in argv and any(Path(a).name == "stratus" or a == "stratus.local.cli" for a in argv)
