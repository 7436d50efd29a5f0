"""Stopping, crashing and restarting `stratus serve` with a job running, as a process manager, a container
runtime or the OOM killer would: no child process (database, inference server, job worker) outlives the
server, a restart on the same state directory comes up, and the interrupted job fails at once with the
reason instead of staying `running` until the heartbeat timeout."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from stratus.local.embedded_db import free_port as free_db_port
from tests.e2e.server import ServeProcess, alive, free_port

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
]

CSV = (
    "x1,x2,label\n" + "".join(f"{i % 7},{(i * 3) % 5},{'yes' if i % 3 else 'no'}\n" for i in range(400))
).encode()
# A server without the warm inference worker, for the tests that do not need one (it imports torch).
NO_WARM = {"STRATUS_LOCAL_WARM_INFERENCE": "false"}


def wait_until(condition: Callable[[], Any], limit_s: float, what: str) -> Any:
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {limit_s} s waiting for {what}")


def kind(argv: list[str]) -> str:
    if "secantus" in argv:
        return "database"
    if "stratus_worker.inference.server" in argv:
        return "inference"
    return "worker" if "stratus_worker" in argv else "other"


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    """The servers a test started; whatever is still running at the end is killed."""
    started: list[ServeProcess] = []
    yield started
    for server in started:
        if server.process is not None and server.process.poll() is None:
            server.process.kill()
            server.process.communicate()


def serve(servers: list[ServeProcess], state_dir: Path, env: dict[str, str] | None = None) -> ServeProcess:
    server = ServeProcess(state_dir, free_port(), env=env or {})
    servers.append(server)
    server.start(timeout_s=120)
    return server


def start_long_training(server: ServeProcess) -> tuple[httpx.Client, str]:
    """A user, a dataset and a training job that runs far longer than the test; returns the client
    (authenticated) and the job id once its worker runs."""
    http = httpx.Client(base_url=server.base_url, timeout=30)
    creds = {"email": "ops@example.com", "password": "securepass123", "name": "Ops"}
    token = http.post("/api/auth/register", json=creds).json()["access_token"]
    http.headers["Authorization"] = f"Bearer {token}"
    upload = http.post("/api/datasets/upload", files={"file": ("d.csv", CSV)}, data={"name": "d"})
    assert upload.status_code == 201, upload.text
    started = http.post(
        "/training/start",
        json={
            "dataset_id": upload.json()["_id"],
            "model_type": "mlp",
            "hyperparameters": {"epochs": 1000},
            "early_stopping": {"enabled": False},
        },
    )
    assert started.status_code == 201, started.text
    job_id = str(started.json()["job_id"])
    wait_until(lambda: http.get(f"/api/jobs/{job_id}").json()["status"] == "running", 60, "the job to run")
    return http, job_id


def children_by_kind(server: ServeProcess, kinds: set[str]) -> dict[str, int]:
    def found() -> dict[str, int] | None:
        by_kind = {kind(argv): pid for pid, argv in server.children().items()}
        return by_kind if kinds <= by_kind.keys() else None

    return dict(wait_until(found, 60, f"the server's {sorted(kinds)} processes"))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL], ids=["sigterm", "sigkill"])
def test_stop_or_crash_with_a_job_running_then_restart(
    servers: list[ServeProcess], tmp_path: Path, sig: signal.Signals
) -> None:
    state = tmp_path / "state"
    server = serve(servers, state)
    http, job_id = start_long_training(server)
    children = children_by_kind(server, {"database", "inference", "worker"})

    returncode, output = server.stop(timeout_s=60, sig=sig)

    if sig == signal.SIGTERM:
        # THEN the graceful path ran (the database checkpointed) and every child is already gone
        assert returncode == 0, output
        assert "Stratus stopped" in output, output
        assert not [pid for pid in children.values() if alive(pid)], (children, output)
    # WHEN it starts again on the same state directory THEN it comes up
    restarted = serve(servers, state)
    # AND nothing of the first run is left (a crashed server's children went down with it)
    wait_until(lambda: not any(alive(pid) for pid in children.values()), 30, f"{children} to be gone")
    # AND the interrupted job failed at once, with the reason, for its owner to see
    http.base_url = httpx.URL(restarted.base_url)
    job = http.get(f"/api/jobs/{job_id}").json()
    assert job["status"] == "failed", job
    assert "server restarted" in job["error"]
    events = http.get(f"/api/jobs/{job_id}/events").json()
    assert any(e["data"].get("status") == "failed" for e in events["events"]), events
    returncode, output = restarted.stop(timeout_s=60)
    assert returncode == 0, output
    assert "1 interrupted job(s) ended" in output


def test_a_worker_killed_mid_job_fails_the_job(servers: list[ServeProcess], tmp_path: Path) -> None:
    server = serve(servers, tmp_path / "state", NO_WARM)
    http, job_id = start_long_training(server)
    worker = children_by_kind(server, {"worker"})["worker"]

    subprocess.run(["kill", "-KILL", str(worker)], check=True)

    job = wait_until(
        lambda: (j := http.get(f"/api/jobs/{job_id}").json())["status"] != "running" and j,
        30,
        "the job to end",
    )
    assert job["status"] == "failed", job
    assert job["error"].endswith("Worker killed by SIGKILL"), job
    returncode, output = server.stop(timeout_s=60)
    assert returncode == 0, output


def test_a_second_server_on_the_same_state_dir_is_refused(
    servers: list[ServeProcess], tmp_path: Path
) -> None:
    first = serve(servers, tmp_path / "state", NO_WARM)
    assert first.process is not None

    with pytest.raises(RuntimeError, match=rf"another `stratus serve` \(pid {first.process.pid}\) is using"):
        serve(servers, tmp_path / "state", NO_WARM)

    # THEN the first one keeps serving
    assert httpx.get(f"{first.base_url}/ready", timeout=10).status_code == 200
    returncode, output = first.stop(timeout_s=60)
    assert returncode == 0, output


def test_a_database_engine_left_running_by_an_older_version_is_stopped(
    servers: list[ServeProcess], tmp_path: Path
) -> None:
    # GIVEN an engine on the state directory whose server is gone (started in the background by a shell
    # that exits at once, so it is nobody's child, as after an older Stratus was killed)
    state = tmp_path / "state"
    port = free_db_port()
    engine = [sys.executable, "-m", "secantus", "--port", str(port), "--storage-path", str(state / "db")]
    shell = subprocess.run(
        ["sh", "-c", '"$@" >/dev/null 2>&1 & echo $!', "sh", *engine],
        check=True,
        capture_output=True,
        text=True,
    )
    leftover = int(shell.stdout)
    client: MongoClient[dict[str, Any]] = MongoClient(f"mongodb://127.0.0.1:{port}/?directConnection=true")
    try:
        client.admin.command("ping")  # it answers: it holds the data directory's lock
    finally:
        client.close()

    server = serve(servers, state, NO_WARM)

    # THEN the server stopped the leftover and runs on its own engine
    assert not alive(leftover)
    assert httpx.get(f"{server.base_url}/health/db", timeout=10).json()["status"] == "healthy"
    returncode, output = server.stop(timeout_s=60)
    assert returncode == 0, output
    assert f"stopping the database engine (pid {leftover}) a previous `stratus serve` left running" in output
