"""`stratus serve` as a subprocess on a free port with its own state directory, as a user runs it."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection

TERMINAL = ("completed", "failed", "stopped")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class ServeProcess:
    state_dir: Path
    port: int
    env: dict[str, str] = field(default_factory=dict)  # on top of this process's environment
    process: subprocess.Popen[str] | None = None
    # Its output, read as it comes: an unread pipe fills up (64 KiB of access log) and blocks the server.
    output: list[str] = field(default_factory=list)
    _reader: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout_s: float = 60) -> None:
        env = (
            {k: v for k, v in os.environ.items() if k != "MONGODB_URI"}
            | {"STRATUS_STATE_DIR": str(self.state_dir)}
            | self.env
        )
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "stratus.local.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self._reader.join(timeout=5)
                raise RuntimeError(f"stratus serve exited: {''.join(self.output)}")
            try:
                if httpx.get(f"{self.base_url}/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.process.kill()
        raise RuntimeError("stratus serve did not become ready")

    def stop(self, timeout_s: float = 30, sig: signal.Signals = signal.SIGINT) -> tuple[int, str]:
        """Ctrl-C (or `sig`: SIGTERM as a process manager sends, SIGKILL for a crash); returns the exit
        code and everything it printed."""
        assert self.process is not None
        self.process.send_signal(sig)
        try:
            self.process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise
        if self._reader is not None:
            self._reader.join(timeout=10)
        return self.process.returncode, "".join(self.output)

    def _drain(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    def children(self) -> dict[int, list[str]]:
        """Its child processes now: pid -> argv (read from /proc, so Linux only)."""
        assert self.process is not None
        found = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                argv = (entry / "cmdline").read_bytes().decode().split("\0")[:-1]
            except (OSError, IndexError, ValueError):
                continue  # it exited meanwhile
            if ppid == self.process.pid:
                found[int(entry.name)] = argv
        return found


def alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for its new parent to reap it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


async def messages_until_done(ws: ClientConnection) -> list[dict[str, Any]]:
    """What a followed job pushes on the WebSocket, up to its terminal status (completed, failed or
    stopped), in arrival order."""
    messages = []
    while True:
        message = json.loads(await ws.recv())
        messages.append(message)
        if message["type"] in ("status", "error") and message["data"].get("status") in TERMINAL:
            return messages
