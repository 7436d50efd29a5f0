"""The embedded MongoDB-compatible engine (SecantusDB) for the local runtime.

It runs as a child process on a data directory under the state folder and speaks the MongoDB wire
protocol, so the app uses exactly the pymongo code path it uses against Atlas or DocumentDB.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from pymongo import MongoClient
from pymongo.errors import PyMongoError

# The engine takes a few seconds to checkpoint WiredTiger on a graceful stop.
STOP_GRACE_S = 20.0


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
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir.parent / "database.log").open("ab")
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
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self._wait_ready(timeout_s)
        return self.uri

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self._process is not None
            if self._process.poll() is not None:
                raise EmbeddedDatabaseError(
                    f"the embedded database exited with code {self._process.returncode}; "
                    f"is another `stratus serve` using {self.data_dir}? See {self.data_dir.parent / 'database.log'}"
                )
            client: MongoClient[dict[str, object]] = MongoClient(self.uri, serverSelectionTimeoutMS=500)
            try:
                client.admin.command("ping")
                return
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
