"""The capabilities: the one list the composition root, the queue and event handlers and the worker
read. Adding a job kind is its spec module plus one line here."""

from __future__ import annotations

from stratus.capabilities.downloads import spec as downloads
from stratus.capabilities.training import spec as training
from stratus.jobs.kinds import JobKind, JobKinds

JOB_KINDS: tuple[JobKind, ...] = (
    training.KIND,
    downloads.KIND,
)


def job_kinds() -> JobKinds:
    return JobKinds(JOB_KINDS)
