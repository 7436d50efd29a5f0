"""The job state machine: every status a job can have, every event that moves it, and one table.

A job only moves along this table. Writers name the event, never the statuses: the store looks up
which statuses the event applies from and which status it leads to, and applies it as one conditional
update, so a late or duplicated event can never move a job backwards.

    queued ──claim──▶ starting ──started/progress──▶ running ──succeeded──▶ completed
      │                  │  ▲                          │
      │               release (over the user's cap)   stop_requested ──▶ stopping ──stopped──▶ stopped
      └──cancel──▶ stopped         failed / lost / server_restarted ──▶ failed (from any active state)
"""

from __future__ import annotations

from enum import StrEnum
from types import MappingProxyType


class JobStatus(StrEnum):
    QUEUED = "queued"
    STARTING = "starting"
    RUNNING = "running"
    STOPPING = "stopping"
    COMPLETED = "completed"
    FAILED = "failed"
    STOPPED = "stopped"


class JobEvent(StrEnum):
    CLAIM = "claim"  # the dispatcher takes a queued job to submit it
    RELEASE = "release"  # claimed over the user's running cap: back to the queue
    WAIT = "wait"  # still queued (waiting for a slot, or its message re-sent): touched, not moved
    SUBMITTED = "submitted"  # the backend accepted it: its handle is recorded, the status is kept
    SUBMIT_FAILED = "submit_failed"  # the backend refused it
    STARTED = "started"  # the backend says the container runs
    PROGRESS = "progress"  # the worker reports progress (which also proves it runs)
    BACKEND_FINISHED = "backend_finished"  # the container exited 0; its result event is still due
    SUCCEEDED = "succeeded"  # the worker's result: the job's outputs are registered
    RESULT_REPAIRED = "result_repaired"  # a redelivered result attaches the model a crash left out
    FAILED = "failed"  # the worker or its backend reports a failure
    LOST = "lost"  # the sweeper: no heartbeat, or the backend ended without a result
    SERVER_RESTARTED = "server_restarted"  # the local runtime restarted while the job ran
    CANCEL = "cancel"  # the user stops a job that never started
    STOP_REQUESTED = "stop_requested"  # the user stops a started job: the backend is asked to stop it
    STOPPED = "stopped"  # the worker or its backend confirms it stopped


Q, S, R, X = JobStatus.QUEUED, JobStatus.STARTING, JobStatus.RUNNING, JobStatus.STOPPING
DONE, FAIL, STOP = JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.STOPPED

ACTIVE: tuple[JobStatus, ...] = (Q, S, R, X)  # may still read its dataset; counts against caps
RUNNING: tuple[JobStatus, ...] = (S, R, X)  # holds one of the user's running slots
TERMINAL: tuple[JobStatus, ...] = (DONE, FAIL, STOP)


def _to(target: JobStatus, *sources: JobStatus) -> dict[JobStatus, JobStatus]:
    return dict.fromkeys(sources, target)


# event -> {status it applies from: status it leads to}. A pair not listed is ignored (the job moved on).
TRANSITIONS: MappingProxyType[JobEvent, MappingProxyType[JobStatus, JobStatus]] = MappingProxyType(
    {
        event: MappingProxyType(moves)
        for event, moves in {
            JobEvent.CLAIM: _to(S, Q),
            JobEvent.RELEASE: _to(Q, S),
            JobEvent.WAIT: _to(Q, Q),
            JobEvent.SUBMITTED: {S: S, R: R, X: X},
            JobEvent.SUBMIT_FAILED: _to(FAIL, S),
            JobEvent.STARTED: _to(R, S),
            JobEvent.PROGRESS: {S: R, R: R, X: X},
            JobEvent.BACKEND_FINISHED: {S: S, R: R, X: X},
            JobEvent.SUCCEEDED: _to(DONE, *RUNNING),
            JobEvent.RESULT_REPAIRED: _to(DONE, DONE),
            JobEvent.FAILED: _to(FAIL, *ACTIVE),
            JobEvent.LOST: _to(FAIL, *RUNNING),
            JobEvent.SERVER_RESTARTED: _to(FAIL, *RUNNING),
            JobEvent.CANCEL: _to(STOP, Q),
            JobEvent.STOP_REQUESTED: _to(X, S, R),
            JobEvent.STOPPED: _to(STOP, *ACTIVE),
        }.items()
    }
)


class IllegalTransition(Exception):
    """An event that the table does not allow from the job's status (a programming error: writers
    that may race pass no expected status and get None back instead)."""


def next_status(status: str, event: JobEvent) -> JobStatus | None:
    """Where `event` takes a job in `status`; None when it does not apply (the job moved on)."""
    try:
        return TRANSITIONS[event].get(JobStatus(status))
    except ValueError:  # a status outside the pipeline: seed 003's client-managed records
        return None


def sources(event: JobEvent) -> tuple[JobStatus, ...]:
    return tuple(TRANSITIONS[event])


def is_terminal(status: str) -> bool:
    return status in TERMINAL
