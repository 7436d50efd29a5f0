"""The escape suite (stratus_worker.sandbox.escapes) through the inference server's HTTP API: every
attempt to get out is blocked and the run fails with its reason, the server keeps answering after each,
and a normal function on the real all-MiniLM-L6-v2 still works. The worker image runs the same cases with
`python -m stratus_worker.sandbox.escapes`."""

from __future__ import annotations

import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from stratus_worker.sandbox import escapes

pytestmark = pytest.mark.slow  # a fresh inference server and sandbox runners importing torch

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, int]]:
    log = tmp_path_factory.mktemp("sandbox-server") / "stderr.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", escapes.SECRET_ENV: escapes.SECRET_VALUE,
           "STRATUS_SANDBOX_RUNNERS": "1", "STRATUS_SANDBOX_WARM": "1"}  # fmt: skip
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "stratus_worker.inference.server", "--host", "127.0.0.1", "--port", "0",
             "--threads", "1", "--log-level", "info"],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )  # fmt: skip
    try:
        assert proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(proc.stdout, selectors.EVENT_READ)
        deadline = time.monotonic() + 120
        line = ""
        while not line.startswith("READY ") and time.monotonic() < deadline and proc.poll() is None:
            if selector.select(timeout=1):
                line = proc.stdout.readline()
        assert line.startswith("READY "), f"no READY line; stderr:\n{log.read_text()[-3000:]}"
        yield f"http://127.0.0.1:{int(line.split()[1])}", proc.pid
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def context(server: tuple[str, int], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    url, pid = server
    return escapes.context(
        port=int(url.rsplit(":", 1)[1]), server_pid=pid, root=tmp_path_factory.mktemp("targets")
    )


def run(url: str, code: dict[str, str], text: str, timeout_s: float | None = None) -> dict[str, Any]:
    body = {"task": "custom", "model": "custom", "inputs": [{**code, "input_text": text}],
            "options": {"timeout_s": timeout_s} if timeout_s else {}}  # fmt: skip
    response = httpx.post(f"{url}/invoke", json=body, timeout=180)
    assert response.status_code == 200, response.text
    output: dict[str, Any] = response.json()["outputs"][0]
    return output


@pytest.mark.parametrize("case", escapes.CASES, ids=[case.name for case in escapes.CASES])
def test_escape_is_blocked(case: escapes.Case, server: tuple[str, int], context: dict[str, Any]) -> None:
    url, _ = server
    answer = run(url, {"function_code": case.code}, case.text(context), case.timeout_s)
    assert escapes.judge(case, answer, context) is None, str(answer)
    assert answer["error"]  # the run says why it failed
    assert set(answer["isolation"]) >= {"seccomp", "landlock", "rlimits", "no_new_privs"}
    assert httpx.get(f"{url}/health", timeout=10).status_code == 200  # the server keeps answering


def test_a_normal_function_on_a_real_model_works(server: tuple[str, int]) -> None:
    url, _ = server
    answer = run(url, escapes.NORMAL_MODEL_CODE, "The sandbox still runs real models.")
    assert answer["ok"] is True, str(answer)
    assert answer["result"]["dimension"] == 384 and answer["result"]["tokens"] > 3
    assert answer["isolation"]["seccomp"] == "applied"
    assert answer["isolation"]["landlock"].startswith("applied")
    assert answer["isolation"]["no_new_privs"] == "applied"


def test_a_print_is_returned_and_invalid_code_is_explained(server: tuple[str, int]) -> None:
    url, _ = server
    answer = run(
        url, {"function_code": "def custom_function(text):\n    print('hi', text)\n    return [1, 2]"}, "x"
    )
    assert answer["ok"] is True and answer["result"] == [1, 2] and "hi x" in answer["stdout"]
    syntax = run(url, {"function_code": "def custom_function(text) return 1"}, "x")
    assert syntax["ok"] is False and "SyntaxError" in syntax["error"]
    missing = run(url, {"function_code": "x = 1"}, "x")
    assert missing["ok"] is False and missing["reason"] == "invalid_code"
    unserialisable = run(url, {"function_code": "def custom_function(text):\n    return torch.zeros(2)"}, "x")
    assert unserialisable["ok"] is False and unserialisable["reason"] == "invalid_result"


def test_each_run_gets_a_fresh_work_directory(server: tuple[str, int]) -> None:
    url, _ = server
    code = ("import os\ndef custom_function(text):\n    before = os.listdir('.')\n"
            "    open('note.txt', 'w').write(text)\n    return {'before': before, 'cwd_writable': True}")  # fmt: skip
    first = run(url, {"function_code": code}, "one")
    second = run(url, {"function_code": code}, "two")
    assert first["ok"] and second["ok"], (first, second)
    assert first["result"]["before"] == [] and second["result"]["before"] == []


def test_the_environment_is_scrubbed(server: tuple[str, int]) -> None:
    url, _ = server
    answer = run(
        url, {"function_code": "import os\ndef custom_function(text):\n    return dict(os.environ)"}, ""
    )
    assert answer["ok"] is True
    assert escapes.SECRET_ENV not in answer["result"]
    assert not any(key.startswith(("AWS_", "MONGODB", "STRATUS_")) for key in answer["result"])
    assert answer["result"]["HF_HUB_OFFLINE"] == "1"


def test_a_model_that_is_not_in_the_local_copy_is_not_fetched(server: tuple[str, int]) -> None:
    url, _ = server
    code = {"tokenizer_code": "tokenizer = AutoTokenizer.from_pretrained('bert-base-uncased')",
            "function_code": "def custom_function(text):\n    return 1"}  # fmt: skip
    answer = run(url, code, "x")
    assert answer["ok"] is False and answer["reason"] == "model_not_found", str(answer)
    assert "built-in models" in answer["error"]
