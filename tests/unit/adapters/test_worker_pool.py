"""LocalProcessBackend: real subprocesses (small Python scripts) standing in for the worker container."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from stratus.adapters.job_env import JOB_STATE_CHANGE
from stratus.adapters.local.worker_pool import LocalProcessBackend
from stratus.errors import InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.events import Event
from stratus.ports.jobs import JobHandle, JobSpec

# Each script is `python -c`; what they share: the job's work dir and a "ready" marker written once the
# SIGTERM handler (if any) is installed.
PRELUDE = (
    "import os, signal, sys, time, json, pathlib\nwork = pathlib.Path(os.environ['STRATUS_JOB_WORKDIR'])\n"
)
SUCCEED = PRELUDE + (
    "keys = ['STRATUS_JOB_ID', 'STRATUS_JOB_KIND', 'STRATUS_JOB_PARAMS', 'STRATUS_OUTPUT_PREFIX', 'CUSTOM']\n"
    "(work / 'env.json').write_text(json.dumps({k: os.environ.get(k) for k in keys}))\n"
)
FAIL = PRELUDE + "for i in range(30): print(f'line {i}', file=sys.stderr)\nsys.exit(3)\n"
FAIL_SILENTLY = PRELUDE + "sys.exit(4)\n"
GRACEFUL = PRELUDE + (
    "def on_term(*_):\n    (work / 'terminated').write_text('checkpointed')\n    sys.exit(0)\n"
    "signal.signal(signal.SIGTERM, on_term)\n(work / 'ready').write_text('')\ntime.sleep(30)\n"
)
STUBBORN = PRELUDE + (
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n(work / 'ready').write_text('')\ntime.sleep(30)\n"
)
KILLED = PRELUDE + "print('loading the dataset', file=sys.stderr, flush=True)\nos.kill(os.getpid(), 9)\n"
SLEEP = PRELUDE + "time.sleep(float(json.loads(os.environ['STRATUS_JOB_PARAMS']).get('sleep', 30)))\n"
ORPHAN = PRELUDE + (
    "import subprocess\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    "(work / 'child.pid').write_text(str(child.pid))\n"
)


class Events:
    """Collects the backend's events and lets a test wait for one."""

    def __init__(self) -> None:
        self.items: list[Event] = []
        self._changed = asyncio.Condition()

    async def __call__(self, event: Event) -> None:
        async with self._changed:
            self.items.append(event)
            self._changed.notify_all()

    def states(self, handle: JobHandle) -> list[str]:
        return [e.detail["state"] for e in self.items if e.detail["external_id"] == handle.external_id]

    async def wait_for(self, handle: JobHandle, state: str, limit_s: float = 5) -> dict[str, Any]:
        def found() -> bool:
            return state in self.states(handle)

        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(found)
        return next(
            e.detail
            for e in self.items
            if e.detail["external_id"] == handle.external_id and e.detail["state"] == state
        )


@pytest.fixture
def events() -> Events:
    return Events()


@pytest.fixture
async def make_backend(events: Events, tmp_path: Path) -> AsyncIterator[Callable[..., LocalProcessBackend]]:
    backends: list[LocalProcessBackend] = []

    def make(script: str, **kwargs: Any) -> LocalProcessBackend:
        backend = LocalProcessBackend(
            [sys.executable, "-c", script], on_event=events, work_dir=tmp_path / "jobs", **kwargs
        )
        backends.append(backend)
        return backend

    yield make
    for backend in backends:
        await backend.shutdown()


def spec(job_id: str = "job1", **params: Any) -> JobSpec:
    return JobSpec(
        job_id=job_id, kind="train", params=params, output_prefix=f"jobs/{job_id}/", env={"CUSTOM": "yes"}
    )


async def wait_for_file(path: Path, limit_s: float = 5) -> None:
    async with asyncio.timeout(limit_s):
        while not path.exists():
            await asyncio.sleep(0.01)


async def test_a_successful_job_runs_with_the_job_environment(
    make_backend: Callable[..., LocalProcessBackend], events: Events, tmp_path: Path
) -> None:
    backend = make_backend(SUCCEED)

    handle = await backend.submit(spec("job1", lr=0.1))
    status = await backend.wait(handle)

    assert handle.backend == "local"
    assert handle.external_id.startswith("local-job1-")
    assert len(handle.external_id) == len("local-job1-") + 8
    assert (status.state, status.reason) == ("completed", None)
    assert await backend.describe(handle) == status
    assert events.states(handle) == ["running", "completed"]
    assert {e.detail_type for e in events.items} == {JOB_STATE_CHANGE}
    assert events.items[-1].detail == {
        "job_id": "job1",
        "backend": "local",
        "external_id": handle.external_id,
        "state": "completed",
        "reason": None,
    }
    env = json.loads((tmp_path / "jobs" / "job1" / "env.json").read_text())
    assert env == {
        "STRATUS_JOB_ID": "job1",
        "STRATUS_JOB_KIND": "train",
        "STRATUS_JOB_PARAMS": '{"lr":0.1}',
        "STRATUS_OUTPUT_PREFIX": "jobs/job1/",
        "CUSTOM": "yes",
    }


async def test_a_failing_job_reports_the_tail_of_stderr(
    make_backend: Callable[..., LocalProcessBackend], events: Events
) -> None:
    backend = make_backend(FAIL)

    handle = await backend.submit(spec())
    status = await backend.wait(handle)

    assert status.state == "failed"
    assert status.reason is not None
    assert status.reason.splitlines() == [f"line {i}" for i in range(10, 30)]
    assert (await events.wait_for(handle, "failed"))["reason"] == status.reason


async def test_a_silent_failure_reports_the_exit_code(
    make_backend: Callable[..., LocalProcessBackend],
) -> None:
    backend = make_backend(FAIL_SILENTLY)
    status = await backend.wait(await backend.submit(spec()))
    assert (status.state, status.reason) == ("failed", "Worker exited with code 4")


async def test_a_worker_killed_by_a_signal_says_so_after_its_stderr(
    make_backend: Callable[..., LocalProcessBackend],
) -> None:
    # GIVEN a worker that logged something, then was killed from outside (as by the OOM killer)
    backend = make_backend(KILLED)
    status = await backend.wait(await backend.submit(spec()))
    assert status.state == "failed"
    assert status.reason == "loading the dataset\nWorker killed by SIGKILL"


async def test_a_retry_reports_only_its_own_stderr(
    make_backend: Callable[..., LocalProcessBackend], tmp_path: Path
) -> None:
    # GIVEN a first run of job1 that wrote to stderr (its log stays in the work dir)
    noisy = make_backend(FAIL)
    await noisy.wait(await noisy.submit(spec()))
    silent = make_backend(FAIL_SILENTLY)

    status = await silent.wait(await silent.submit(spec()))

    assert status.reason == "Worker exited with code 4"
    assert "line 29" in (tmp_path / "jobs" / "job1" / "stderr.log").read_text()


async def test_stop_sends_sigterm_so_the_worker_can_checkpoint(
    make_backend: Callable[..., LocalProcessBackend], events: Events, tmp_path: Path
) -> None:
    backend = make_backend(GRACEFUL)
    handle = await backend.submit(spec())
    await wait_for_file(tmp_path / "jobs" / "job1" / "ready")

    await backend.stop(handle)
    status = await backend.wait(handle)
    await backend.stop(handle)  # idempotent once finished

    assert (status.state, status.reason) == ("stopped", None)
    assert (tmp_path / "jobs" / "job1" / "terminated").read_text() == "checkpointed"
    assert events.states(handle) == ["running", "stopped"]


async def test_stop_kills_a_worker_that_ignores_sigterm_after_the_grace_period(
    make_backend: Callable[..., LocalProcessBackend], tmp_path: Path
) -> None:
    backend = make_backend(STUBBORN, grace_s=0.2)
    handle = await backend.submit(spec())
    await wait_for_file(tmp_path / "jobs" / "job1" / "ready")

    started = time.monotonic()
    await backend.stop(handle)
    status = await backend.wait(handle)

    assert status.state == "stopped"
    assert 0.2 <= time.monotonic() - started < 3


async def test_max_workers_caps_concurrency(
    make_backend: Callable[..., LocalProcessBackend], events: Events
) -> None:
    backend = make_backend(SLEEP, max_workers=1)

    first = await backend.submit(spec("a", sleep=0.3))
    second = await backend.submit(spec("b", sleep=0))
    await events.wait_for(first, "running")
    await asyncio.sleep(0.1)

    # THEN the second waits, pending, until the first ends
    assert (await backend.describe(first)).state == "running"
    assert (await backend.describe(second)).state == "pending"
    await backend.wait(second)
    order = [(e.detail["job_id"], e.detail["state"]) for e in events.items]
    assert order == [("a", "running"), ("a", "completed"), ("b", "running"), ("b", "completed")]


async def test_stopping_a_queued_job_means_it_never_runs(
    make_backend: Callable[..., LocalProcessBackend], events: Events, tmp_path: Path
) -> None:
    backend = make_backend(SLEEP, max_workers=1)
    running = await backend.submit(spec("a", sleep=30))
    queued = await backend.submit(spec("b", sleep=0))
    await events.wait_for(running, "running")

    await backend.stop(queued)
    await backend.stop(running)

    assert (await backend.wait(queued)).state == "stopped"
    assert (await backend.wait(running)).state == "stopped"
    assert events.states(queued) == ["stopped"]
    assert not (tmp_path / "jobs" / "b").exists()


async def test_the_runtime_limit_fails_the_job(make_backend: Callable[..., LocalProcessBackend]) -> None:
    backend = make_backend(SLEEP, grace_s=0.1)
    job = JobSpec(job_id="slow", kind="train", params={"sleep": 30}, output_prefix="o/", max_runtime_s=1)

    status = await backend.wait(await backend.submit(job))

    assert status.state == "failed"
    assert status.reason == "Exceeded the maximum runtime of 1 s"


async def test_helpers_the_worker_started_do_not_outlive_it(
    make_backend: Callable[..., LocalProcessBackend], tmp_path: Path
) -> None:
    backend = make_backend(ORPHAN)
    status = await backend.wait(await backend.submit(spec()))
    assert status.state == "completed"

    pid = int((tmp_path / "jobs" / "job1" / "child.pid").read_text())
    async with asyncio.timeout(5):
        while _alive(pid):
            await asyncio.sleep(0.02)


async def test_shutdown_stops_everything_and_refuses_new_jobs(
    make_backend: Callable[..., LocalProcessBackend], events: Events
) -> None:
    backend = make_backend(SLEEP, max_workers=1, grace_s=1)
    running = await backend.submit(spec("a", sleep=30))
    queued = await backend.submit(spec("b", sleep=30))
    await events.wait_for(running, "running")

    await backend.shutdown()

    assert (await backend.describe(running)).state == "stopped"
    assert (await backend.describe(queued)).state == "stopped"
    with pytest.raises(ServiceUnavailable):
        await backend.submit(spec("c"))
    await backend.shutdown()  # idempotent


async def test_unknown_handles_and_unsafe_job_ids(make_backend: Callable[..., LocalProcessBackend]) -> None:
    backend = make_backend(SUCCEED)
    with pytest.raises(NotFound):
        await backend.describe(JobHandle("local", "local-nope-00000000"))
    with pytest.raises(NotFound):
        await backend.stop(JobHandle("batch", "anything"))
    for job_id in ("../escape", "a/b", "", ".hidden"):
        with pytest.raises(InvalidInput):
            await backend.submit(spec(job_id))


async def test_a_command_that_cannot_start_fails_the_job(events: Events, tmp_path: Path) -> None:
    backend = LocalProcessBackend([str(tmp_path / "missing-binary")], on_event=events, work_dir=tmp_path)
    status = await backend.wait(await backend.submit(spec()))
    assert status.state == "failed"
    assert (status.reason or "").startswith("could not start the worker")
    await backend.shutdown()


def _alive(pid: int) -> bool:
    """True while `pid` runs; a zombie waiting for PID 1 to reap it counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    except (FileNotFoundError, IndexError):
        return False


EMITS = PRELUDE + (
    "path = pathlib.Path(os.environ['STRATUS_EVENTS_FILE'])\n"
    "with path.open('a') as f:\n"
    "    for seq in (1, 2):\n"
    "        env = {'version': '0', 'id': str(seq), 'source': 'stratus.jobs', 'detail-type': 'Stratus Job Progress',\n"
    "               'time': '2026-01-01T00:00:00Z', 'detail': {'job_id': os.environ['STRATUS_JOB_ID'], 'seq': seq}}\n"
    "        f.write(json.dumps(env) + '\\n'); f.flush()\n"
    "    f.write('not json\\n')\n"
    "    f.write(json.dumps({**env, 'detail-type': 'Stratus Job Result', 'detail': {'status': 'completed'}}))\n"
)


async def test_worker_events_are_published_before_the_exit_state(tmp_path: Path) -> None:
    # GIVEN a worker that appends envelopes to its events file (the last line without a newline)
    seen: list[Event] = []

    async def collect(event: Event) -> None:
        seen.append(event)

    backend = LocalProcessBackend(
        [sys.executable, "-c", EMITS], on_event=collect, work_dir=tmp_path / "jobs", extra_env={"EXTRA": "1"}
    )
    try:
        handle = await backend.submit(spec("emitter"))
        assert (await backend.wait(handle)).state == "completed"
    finally:
        await backend.shutdown()
    # THEN its events arrive in order, malformed lines are skipped, and the exit state comes last
    kinds = [e.detail_type for e in seen]
    assert kinds == [
        JOB_STATE_CHANGE,
        "Stratus Job Progress",
        "Stratus Job Progress",
        "Stratus Job Result",
        JOB_STATE_CHANGE,
    ]
    assert [e.detail.get("seq") for e in seen[1:3]] == [1, 2]
    assert seen[-1].detail["state"] == "completed"
