"""JobStore on the real engine: events move a job only along the table, as one conditional update."""

from __future__ import annotations

import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.jobs.lifecycle import IllegalTransition, JobEvent


async def _queued(container: Container) -> ObjectId:
    job, created = await container.job_store.create(
        {"user_id": ObjectId(), "kind": "training", "params": {}}, idempotency_key=None
    )
    assert created and job["status"] == "queued"
    return job["_id"]


async def test_events_move_a_job_along_the_table(container: Container) -> None:
    store = container.job_store
    job_id = await _queued(container)
    claimed = await store.apply(job_id, JobEvent.CLAIM, changes={"claimed_at": "t"})
    assert claimed is not None and claimed["status"] == "starting" and claimed["claimed_at"] == "t"
    # A second delivery of the same claim finds the job elsewhere and changes nothing.
    assert await store.apply(job_id, JobEvent.CLAIM) is None
    submitted = await store.apply(job_id, JobEvent.SUBMITTED, changes={"external_id": "x"})
    assert submitted is not None and submitted["status"] == "starting" and submitted["external_id"] == "x"
    running = await store.apply(job_id, JobEvent.PROGRESS, expected="starting", changes={"progress": 5.0})
    assert running is not None and running["status"] == "running"
    done = await store.apply(job_id, JobEvent.SUCCEEDED, changes={"progress": 100.0})
    assert done is not None and done["status"] == "completed"
    # Nothing moves a finished job backwards: a late failure or progress report is ignored.
    assert await store.apply(job_id, JobEvent.FAILED, changes={"error": "late"}) is None
    assert (await container.job_repo.get(job_id) or {})["status"] == "completed"


async def test_a_stale_expected_status_changes_nothing(container: Container) -> None:
    job_id = await _queued(container)
    await container.job_store.apply(job_id, JobEvent.CLAIM)
    await container.job_store.apply(job_id, JobEvent.STARTED)
    # The caller read the job while it was starting; it has moved on to running since.
    assert await container.job_store.apply(job_id, JobEvent.PROGRESS, expected="starting") is None


async def test_events_whose_target_depends_on_the_status_need_it(container: Container) -> None:
    job_id = await _queued(container)
    with pytest.raises(IllegalTransition):
        await container.job_store.apply(job_id, JobEvent.PROGRESS)
    with pytest.raises(IllegalTransition):
        await container.job_store.apply(job_id, JobEvent.PROGRESS, expected="completed")


async def test_the_where_clause_guards_the_update(container: Container) -> None:
    job_id = await _queued(container)
    assert await container.job_store.apply(job_id, JobEvent.CLAIM, where={"user_id": ObjectId()}) is None
    assert (await container.job_repo.get(job_id) or {})["status"] == "queued"
