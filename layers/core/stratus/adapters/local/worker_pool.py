"""JobBackend on local subprocesses: what SageMaker or Batch do with the worker container, on this machine.

Each job runs `command` with the same STRATUS_JOB_* environment the containers get, at most
`max_workers` at a time (the rest wait, "pending"). State changes are published as
`Stratus Job State Change` events, the local counterpart of SageMaker's and Batch's own events; a
failure's reason is the end of the worker's stderr. Its output is kept in `stdout.log` and `stderr.log`
in its work dir (`STRATUS_JOB_WORKDIR`, `<work_dir>/<job_id>`). Like
`docker stop`, stopping sends SIGTERM to the worker, then SIGKILL to its whole process group after
`grace_s`; the process group also ends with the worker, so no helper it started outlives the job. A
worker also dies with the process that started it (see lifetime.py): no job outlives `stratus serve`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import re
import signal
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from stratus.adapters.job_env import JOB_STATE_CHANGE, job_environment
from stratus.adapters.local.lifetime import die_with_parent
from stratus.errors import InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.events import Event
from stratus.ports.jobs import BackendState, BackendStatus, JobHandle, JobSpec

STDERR_TAIL_LINES = 20
EVENT_POLL_S = (
    0.02  # how often the worker's events file is read while it runs (latency floor of live progress)
)
MAX_LINE_CHARS = 1000  # per stderr line kept for the failure reason
TAIL_BYTES = 64 * 1024  # how much of the end of stderr.log is read for the failure reason
_SAFE_JOB_ID = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$")  # it names a directory

log = logging.getLogger(__name__)


@dataclass(eq=False)
class _Job:
    spec: JobSpec
    external_id: str
    state: BackendState = "pending"
    reason: str | None = None
    started: bool = False  # holds a worker slot (may not have spawned its process yet)
    stop_requested: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class LocalProcessBackend:
    name = "local"

    def __init__(
        self,
        command: list[str],
        *,
        on_event: Callable[[Event], Awaitable[None]],
        max_workers: int = 2,
        work_dir: Path,
        grace_s: float = 10.0,
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        if not command or max_workers < 1:
            raise ValueError("command must not be empty and max_workers must be at least 1")
        self.command = list(command)
        self.on_event = on_event
        self.max_workers = max_workers
        self.work_dir = Path(work_dir)
        self.grace_s = grace_s
        # What a local worker needs that a container gets from its platform (e.g. the storage root).
        self.extra_env = dict(extra_env or {})
        self._slots = asyncio.Semaphore(max_workers)
        self._jobs: dict[str, _Job] = {}
        self._closed = False

    async def submit(self, spec: JobSpec) -> JobHandle:
        if self._closed:
            raise ServiceUnavailable("The local job backend is shutting down")
        if not _SAFE_JOB_ID.match(spec.job_id):
            raise InvalidInput("job_id must be 1-128 letters, digits, '.', '_' or '-'")
        job = _Job(spec, f"local-{spec.job_id}-{uuid.uuid4().hex[:8]}")
        self._jobs[job.external_id] = job
        job.task = asyncio.create_task(self._run(job), name=f"job-{job.external_id}")
        return JobHandle(backend=self.name, external_id=job.external_id)

    async def stop(self, handle: JobHandle) -> None:
        """Idempotent. A queued job never starts; a running one gets SIGTERM, then SIGKILL."""
        job = self._job(handle)
        if job.state not in ("pending", "running"):
            return
        if job.started:
            job.stop_requested.set()  # _run signals the process and reports "stopped"
            return
        assert job.task is not None
        job.task.cancel()
        job.state = "stopped"
        await self._emit(job)

    async def describe(self, handle: JobHandle) -> BackendStatus:
        job = self._job(handle)
        return BackendStatus(job.state, job.reason)

    async def wait(self, handle: JobHandle) -> BackendStatus:
        """Wait for the job to end (completed, failed or stopped) and return its final status."""
        job = self._job(handle)
        if job.task is not None:
            await asyncio.gather(job.task, return_exceptions=True)
        return BackendStatus(job.state, job.reason)

    async def shutdown(self) -> None:
        """Refuse new jobs, stop every unfinished one and wait for them all. Idempotent."""
        self._closed = True
        jobs = list(self._jobs.values())
        for job in jobs:
            await self.stop(JobHandle(self.name, job.external_id))
        await asyncio.gather(*(job.task for job in jobs if job.task is not None), return_exceptions=True)

    def _job(self, handle: JobHandle) -> _Job:
        job = self._jobs.get(handle.external_id) if handle.backend == self.name else None
        if job is None:
            raise NotFound("Job not found in the job backend")
        return job

    async def _run(self, job: _Job) -> None:
        async with self._slots:
            job.started = True
            if job.stop_requested.is_set():
                job.state = "stopped"
            else:
                await self._run_process(job)
        await self._emit(job)

    async def _run_process(self, job: _Job) -> None:
        """Spawn, supervise and reap the worker; leaves the final state on `job`.

        Its output goes to files in its work dir, not pipes: a helper process that inherited a pipe would
        keep asyncio from seeing the worker exit until the helper closed it too.
        """
        workdir = self.work_dir / job.spec.job_id
        events_path = workdir / "events.jsonl"
        try:
            logs = await asyncio.to_thread(_open_logs, workdir)
            with logs.stdout, logs.stderr:
                process = await asyncio.create_subprocess_exec(
                    *self.command,
                    env={
                        **os.environ,
                        **self.extra_env,
                        **job_environment(job.spec),
                        "STRATUS_JOB_WORKDIR": str(workdir),
                        "STRATUS_EVENTS_FILE": str(events_path),
                    },
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=logs.stdout,
                    stderr=logs.stderr,
                    start_new_session=True,  # its own process group, so stop can end all of it
                    # If the server dies, so does the worker: a restart fails the job (nobody would
                    # collect its events any more).
                    preexec_fn=die_with_parent(),
                )
        except OSError as e:
            job.state, job.reason = "failed", f"could not start the worker: {e}"
            return
        job.state = "running"
        await self._emit(job)
        exited = asyncio.Event()
        forwarder = asyncio.create_task(self._forward_events(events_path, exited))
        try:
            returncode, why = await self._supervise(job, process)
        finally:
            _kill_group(process)  # whatever it left behind, and on cancellation the worker itself
            await asyncio.shield(process.wait())
            exited.set()
            # The worker's own events (its result included) go out before the exit state below.
            await asyncio.shield(forwarder)
        if why == "stop":
            job.state, job.reason = "stopped", None
        elif why == "timeout":
            job.state = "failed"
            job.reason = f"Exceeded the maximum runtime of {job.spec.max_runtime_s} s"
        elif returncode == 0:
            job.state, job.reason = "completed", None
        else:
            tail = await asyncio.to_thread(_tail, logs.stderr_path, logs.stderr_start)
            if returncode < 0:
                # Killed from outside (the OOM killer, a user): its stderr does not say so, this does.
                tail = "\n".join(filter(None, (tail, _exit_description(returncode))))
            job.state, job.reason = "failed", tail or _exit_description(returncode)

    async def _supervise(self, job: _Job, process: asyncio.subprocess.Process) -> tuple[int, str]:
        """Wait for the exit, a stop request or the runtime limit; returns (exit code, why it ended)."""
        exited = asyncio.ensure_future(process.wait())
        stop = asyncio.ensure_future(job.stop_requested.wait())
        try:
            await asyncio.wait(
                {exited, stop}, timeout=job.spec.max_runtime_s, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            stop.cancel()
        if exited.done():
            return exited.result(), "exit"
        why = "stop" if job.stop_requested.is_set() else "timeout"
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            return await asyncio.wait_for(exited, self.grace_s), why
        except TimeoutError:
            _kill_group(process)
            return await process.wait(), why

    async def _forward_events(self, path: Path, exited: asyncio.Event) -> None:
        """Publish what the worker appends to its events file (one EventBridge envelope per line), as the
        container's EventBridge calls would in AWS."""
        offset = 0
        buffered = b""
        while True:
            finished = exited.is_set()
            chunk, offset = await asyncio.to_thread(_read_from, path, offset)
            buffered += chunk
            *lines, buffered = buffered.split(b"\n")
            if finished and buffered:
                lines.append(buffered)  # the worker has exited: a last line without a newline is complete
            for line in lines:
                if not line.strip():
                    continue
                try:
                    event = Event.from_envelope(json.loads(line))
                except (ValueError, KeyError, TypeError):
                    log.warning("ignoring a malformed worker event line: %r", line[:200])
                    continue
                try:
                    await self.on_event(event)
                except Exception:
                    log.exception("could not publish a worker event")
            if finished:
                return
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(exited.wait(), EVENT_POLL_S)

    async def _emit(self, job: _Job) -> None:
        event = Event(
            detail_type=JOB_STATE_CHANGE,
            detail={
                "job_id": job.spec.job_id,
                "backend": self.name,
                "external_id": job.external_id,
                "state": job.state,
                "reason": job.reason,
            },
        )
        try:
            await self.on_event(event)
        except Exception:
            log.exception("could not publish the %s event of job %s", job.state, job.external_id)


@dataclass
class _Logs:
    stdout: IO[bytes]
    stderr: IO[bytes]
    stderr_path: Path
    stderr_start: int  # where this run's output begins (a job id's logs accumulate across retries)


def _open_logs(workdir: Path) -> _Logs:
    workdir.mkdir(parents=True, exist_ok=True)
    stderr_path = workdir / "stderr.log"
    stdout = (workdir / "stdout.log").open("ab")
    try:
        stderr = stderr_path.open("ab")
    except BaseException:
        stdout.close()
        raise
    return _Logs(stdout, stderr, stderr_path, stderr.tell())


def _tail(path: Path, start: int) -> str:
    """The last STDERR_TAIL_LINES lines written since `start` (each cut to MAX_LINE_CHARS)."""
    with path.open("rb") as f:
        size = f.seek(0, os.SEEK_END)
        f.seek(max(start, size - TAIL_BYTES))
        text = f.read().decode(errors="replace")
    lines = [line.rstrip()[:MAX_LINE_CHARS] for line in text.splitlines()]
    return "\n".join(lines[-STDERR_TAIL_LINES:]).strip("\n")


def _read_from(path: Path, offset: int) -> tuple[bytes, int]:
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return b"", offset
    return data, offset + len(data)


def _kill_group(process: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)


def _exit_description(returncode: int) -> str:
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"Worker killed by {signal.Signals(-returncode).name}"
    return f"Worker exited with code {returncode}"
