"""The job state machine, pair by pair: every (status, event) either moves the job to the one status
the table names or is ignored. Written out in full so a change to the table is a visible change here."""

from __future__ import annotations

import pytest

from stratus.jobs.lifecycle import (
    ACTIVE,
    RUNNING,
    TERMINAL,
    TRANSITIONS,
    JobEvent,
    JobStatus,
    is_terminal,
    next_status,
)

Q, S, R, X = "queued", "starting", "running", "stopping"
DONE, FAIL, STOP = "completed", "failed", "stopped"

# event -> {from: to}; every pair not listed must be ignored.
EXPECTED: dict[JobEvent, dict[str, str]] = {
    JobEvent.CLAIM: {Q: S},
    JobEvent.RELEASE: {S: Q},
    JobEvent.WAIT: {Q: Q},
    JobEvent.SUBMITTED: {S: S, R: R, X: X},
    JobEvent.SUBMIT_FAILED: {S: FAIL},
    JobEvent.STARTED: {S: R},
    JobEvent.PROGRESS: {S: R, R: R, X: X},
    JobEvent.BACKEND_FINISHED: {S: S, R: R, X: X},
    JobEvent.SUCCEEDED: {S: DONE, R: DONE, X: DONE},
    JobEvent.RESULT_REPAIRED: {DONE: DONE},
    JobEvent.FAILED: {Q: FAIL, S: FAIL, R: FAIL, X: FAIL},
    JobEvent.LOST: {S: FAIL, R: FAIL, X: FAIL},
    JobEvent.SERVER_RESTARTED: {S: FAIL, R: FAIL, X: FAIL},
    JobEvent.CANCEL: {Q: STOP},
    JobEvent.STOP_REQUESTED: {S: X, R: X},
    JobEvent.STOPPED: {Q: STOP, S: STOP, R: STOP, X: STOP},
}


def test_every_event_is_in_the_table() -> None:
    assert set(TRANSITIONS) == set(JobEvent) == set(EXPECTED)


@pytest.mark.parametrize("event", list(JobEvent))
@pytest.mark.parametrize("status", list(JobStatus))
def test_each_pair(status: JobStatus, event: JobEvent) -> None:
    assert next_status(status, event) == EXPECTED[event].get(status.value)


def test_terminal_statuses_never_move_except_a_repaired_result() -> None:
    for status in TERMINAL:
        moves = {event for event in JobEvent if next_status(status, event) is not None}
        assert moves == ({JobEvent.RESULT_REPAIRED} if status == JobStatus.COMPLETED else set())
        assert is_terminal(status)


def test_groups() -> None:
    assert set(ACTIVE) | set(TERMINAL) == set(JobStatus) and not set(ACTIVE) & set(TERMINAL)
    assert set(RUNNING) == set(ACTIVE) - {JobStatus.QUEUED}


def test_statuses_outside_the_pipeline_are_ignored() -> None:
    # Seed 003's client-managed fine-tune records use their own vocabulary.
    for status in ("preparing", "training"):
        assert all(next_status(status, event) is None for event in JobEvent)
