"""The escape suite: user code that tries to get out of the sandbox, and what must stop it.

Shipped inside the worker package so the worker image can run it against itself
(`python -m stratus_worker.sandbox.escapes`, exit status 1 if anything got out); the repository's
tests (tests/integration/sandbox) run the same cases through the inference server's HTTP API and
check that the server keeps answering after each.

Each case's code runs as a custom task (`custom_function(text)`); `text` carries what the case needs
(a path, a port, a marker). A case passes when the run fails with one of its expected reasons and its
check of the answer (no secret in it, no marker file written) holds.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SECRET_ENV = "STRATUS_ESCAPE_SUITE_SECRET"
SECRET_VALUE = "s3cr3t-do-not-leak-7d41"


@dataclass(frozen=True)
class Case:
    name: str
    code: str
    reasons: frozenset[str]
    timeout_s: float | None = None
    # what custom_function receives, from the suite's context (paths, ports, markers)
    text: Callable[[dict[str, Any]], str] = field(default=lambda ctx: "")
    # an extra check on the answer and the world afterwards: None when it holds, else why not
    check: Callable[[dict[str, Any], dict[str, Any]], str | None] = field(default=lambda answer, ctx: None)


def _no_secret(answer: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    return "the secret leaked" if SECRET_VALUE in json.dumps(answer) else None


def _no_marker(answer: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    return f"{ctx['marker']} was written" if Path(ctx["marker"]).exists() else None


BLOCKED = frozenset({"blocked_syscall"})
DENIED = frozenset({"filesystem_denied"})

CASES: tuple[Case, ...] = (
    Case("read /etc/passwd", "def custom_function(text):\n    return open('/etc/passwd').read()", DENIED),
    Case(
        "read another user's file",
        "def custom_function(text):\n    return open(text).read()",
        DENIED,
        text=lambda ctx: ctx["private_file"],
    ),
    Case(
        "list the server's directories",
        "import os\ndef custom_function(text):\n    return os.listdir(text)",
        DENIED,
        text=lambda ctx: ctx["private_dir"],
    ),
    Case(
        "write outside the work directory",
        "def custom_function(text):\n    open(text, 'w').write('escaped')\n    return 'written'",
        DENIED,
        text=lambda ctx: ctx["marker"],
        check=_no_marker,
    ),
    Case(
        "open a socket to the server",
        "import socket\ndef custom_function(text):\n"
        "    s = socket.create_connection(('127.0.0.1', int(text)), timeout=2)\n"
        "    s.sendall(b'GET /health HTTP/1.0\\r\\n\\r\\n')\n    return s.recv(100).decode()",
        BLOCKED,
        text=lambda ctx: str(ctx["port"]),
    ),
    Case(
        "start a subprocess",
        "import subprocess\ndef custom_function(text):\n"
        "    return subprocess.run(['id'], capture_output=True, text=True).stdout",
        BLOCKED,
    ),
    Case(
        "os.system",
        "import os\ndef custom_function(text):\n    rc = os.system('touch ' + text)\n"
        "    if rc != 0:\n        raise PermissionError(1, 'os.system failed', rc)\n    return rc",
        BLOCKED,
        text=lambda ctx: ctx["marker"],
        check=_no_marker,
    ),
    Case(
        "fork bomb",
        "import os\ndef custom_function(text):\n    while True:\n        os.fork()",
        BLOCKED | {"process_limit"},
    ),
    Case(
        "thread bomb",
        "import threading, time\ndef custom_function(text):\n"
        "    while True:\n        threading.Thread(target=time.sleep, args=(60,), daemon=True).start()",
        frozenset({"process_limit", "memory_limit"}),
    ),
    Case(
        "allocate without bound",
        "def custom_function(text):\n    hoard = []\n    while True:\n        hoard.append(bytearray(64 * 2**20))",
        frozenset({"memory_limit"}),
    ),
    Case(
        "allocate a tensor of a terabyte",
        "def custom_function(text):\n    return torch.empty(2**38).sum().item()",
        frozenset({"memory_limit"}),
    ),
    Case(
        "loop forever",
        "def custom_function(text):\n    while True:\n        pass",
        frozenset({"timeout", "cpu_limit"}),
        timeout_s=2.0,
    ),
    Case(
        "print gigabytes",
        "def custom_function(text):\n    line = 'x' * 65535\n    for _ in range(2**20):\n        print(line)",
        frozenset({"output_limit"}),
    ),
    Case(
        "return a huge result",
        "def custom_function(text):\n    return 'x' * (4 * 2**20)",
        frozenset({"result_too_large"}),
    ),
    Case(
        "read environment secrets",
        f"import os\ndef custom_function(text):\n    return os.environ[{SECRET_ENV!r}]",
        frozenset({"error"}),
        check=_no_secret,
    ),
    Case(
        "read the server's environment through /proc",
        "def custom_function(text):\n    return open(f'/proc/{text}/environ', 'rb').read().decode(errors='replace')",
        DENIED,
        text=lambda ctx: str(ctx["server_pid"]),
        check=_no_secret,
    ),
    Case(
        "ctypes: socket() in libc",
        "import ctypes\ndef custom_function(text):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    fd = libc.socket(2, 1, 0)\n    if fd < 0:\n        raise OSError(ctypes.get_errno(), 'libc socket() failed')\n"
        "    return fd",
        BLOCKED,
    ),
    Case(
        "ctypes: system() in libc",
        "import ctypes\ndef custom_function(text):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    rc = libc.system(('touch ' + text).encode())\n"
        "    if rc != 0:\n        raise PermissionError(1, 'libc system() failed', rc)\n    return rc",
        BLOCKED,
        text=lambda ctx: ctx["marker"],
        check=_no_marker,
    ),
    Case(
        "kill the server",
        "import os, signal\ndef custom_function(text):\n    os.kill(int(text), signal.SIGKILL)\n    return 'killed'",
        BLOCKED,
        text=lambda ctx: str(ctx["server_pid"]),
    ),
    Case(
        "ptrace the server",
        "import ctypes\ndef custom_function(text):\n    libc = ctypes.CDLL(None, use_errno=True)\n"
        "    if libc.ptrace(16, int(text), 0, 0) != 0:\n        raise OSError(ctypes.get_errno(), 'ptrace failed')\n"
        "    return 'attached'",
        BLOCKED,
        text=lambda ctx: str(ctx["server_pid"]),
    ),
)

NORMAL_MODEL_CODE = {
    "tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained('sentence-transformers/all-MiniLM-L6-v2')",
    "model_code": "model = AutoModel.from_pretrained('sentence-transformers/all-MiniLM-L6-v2')",
    "function_code": (
        "def custom_function(text):\n"
        "    encoded = tokenizer(text, return_tensors='pt')\n"
        "    with torch.no_grad():\n"
        "        hidden = model(**encoded).last_hidden_state\n"
        "    vector = hidden.mean(dim=1)[0]\n"
        "    return {'tokens': int(encoded['input_ids'].shape[1]), 'dimension': int(vector.shape[0]),\n"
        "            'norm': float(vector.norm())}"
    ),
}


def context(port: int, server_pid: int, root: Path) -> dict[str, Any]:
    """Files the cases aim at: a private file and directory (mode 0600/0700, the server's own) and a
    marker path outside any work directory that must never appear."""
    private_dir = root / "private"
    private_dir.mkdir(mode=0o700, exist_ok=True)
    private_file = private_dir / "secret.txt"
    private_file.write_text(SECRET_VALUE)
    private_file.chmod(0o600)
    return {
        "port": port,
        "server_pid": server_pid,
        "private_dir": str(private_dir),
        "private_file": str(private_file),
        "marker": str(root / "escaped.marker"),
    }


def judge(case: Case, answer: dict[str, Any], ctx: dict[str, Any]) -> str | None:
    """None when the case was stopped as expected, else what went wrong."""
    if answer.get("ok"):
        return f"it ran: {json.dumps(answer.get('result'))[:200]}"
    if answer.get("reason") not in case.reasons:
        return f"failed for another reason: {answer.get('reason')}: {answer.get('error')}"
    return case.check(answer, ctx)


async def _main() -> int:
    from stratus_worker.sandbox.pool import SandboxPool

    os.environ[SECRET_ENV] = SECRET_VALUE
    pool = SandboxPool()
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as root:
            ctx = context(port=1, server_pid=os.getpid(), root=Path(root))
            for case in CASES:
                answer = await pool.run(
                    tokenizer_code="", model_code="", function_code=case.code,
                    input_text=case.text(ctx), timeout_s=case.timeout_s,
                )  # fmt: skip
                problem = judge(case, answer, ctx)
                failures += problem is not None
                print(
                    f"{'ok  ' if problem is None else 'FAIL'} {case.name}: {problem or answer.get('reason')}"
                )
            answer = await pool.run(
                tokenizer_code=NORMAL_MODEL_CODE["tokenizer_code"], model_code=NORMAL_MODEL_CODE["model_code"],
                function_code=NORMAL_MODEL_CODE["function_code"], input_text="The sandbox still runs real models.",
            )  # fmt: skip
            print(f"{'ok  ' if answer.get('ok') else 'FAIL'} a normal function on a real model: "
                  f"{answer.get('result') or answer.get('error')}")  # fmt: skip
            failures += not answer.get("ok")
            print("isolation:", json.dumps(answer.get("isolation"), indent=1))
    finally:
        await pool.close()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(_main()))
