"""The `Idempotency-Key` header of the routes that start a job, and their answer: 201 with a new job,
200 with the same job when the key was seen before (seeds 001 and 002 alike)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Header, Response, status

IdempotencyKey = Annotated[str | None, Header(alias="Idempotency-Key", max_length=200)]


def started_job(response: Response, started: tuple[dict[str, Any], bool]) -> dict[str, Any]:
    """The job a start call returned; the answer is 200 instead of 201 when it was not created now."""
    job, created = started
    if not created:
        response.status_code = status.HTTP_200_OK
    return job
