"""JobBackend on AWS Batch: one Batch job per Stratus job, on a queue and job definition made by the stack."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import translate
from stratus.adapters.job_env import job_environment
from stratus.errors import DependencyFailed, InvalidInput, NotFound
from stratus.ports.jobs import BackendState, BackendStatus, JobHandle, JobSpec

MAX_NAME = 128
MIN_TIMEOUT_S = 60  # Batch's floor for attemptDurationSeconds
# The reason we give terminate_job; a FAILED job carrying it was stopped by us, not failed.
STOP_REASON = "Stopped by Stratus"
_NOT_NAME = re.compile(r"[^a-zA-Z0-9_-]+")

_STATES: dict[str, BackendState] = {
    "SUBMITTED": "pending",
    "PENDING": "pending",
    "RUNNABLE": "pending",
    "STARTING": "pending",
    "RUNNING": "running",
    "SUCCEEDED": "completed",
    "FAILED": "failed",
}


def batch_job_name(job_id: str) -> str:
    """`stratus-{job_id}` in Batch's alphabet (letters, digits, - and _), at most 128 characters."""
    stem = _NOT_NAME.sub("-", job_id).strip("-_")
    return f"stratus-{stem}"[:MAX_NAME].rstrip("-_") if stem else "stratus-job"


class BatchBackend:
    name = "batch"

    def __init__(
        self, client: Any, *, job_queue: str, job_definition: str, gpu_job_queue: str | None = None
    ) -> None:
        self._client = client
        self.job_queue = job_queue
        # Kinds that need a GPU go to the queue of a GPU compute environment, where there is one.
        self.gpu_job_queue = gpu_job_queue or job_queue
        self.job_definition = job_definition

    def submit_request(self, spec: JobSpec) -> dict[str, Any]:
        environment = job_environment(spec)
        reserved = sorted(k for k in environment if k.startswith("AWS_BATCH"))
        if reserved:
            raise InvalidInput(f"Environment variables reserved by AWS Batch: {', '.join(reserved)}")
        overrides: dict[str, Any] = {
            "environment": [{"name": k, "value": str(v)} for k, v in sorted(environment.items())]
        }
        requirements = [{"type": "MEMORY", "value": str(spec.memory_mb)}]
        if spec.gpu:
            requirements.append({"type": "GPU", "value": "1"})
        overrides["resourceRequirements"] = requirements
        return {
            "jobName": batch_job_name(spec.job_id),
            "jobQueue": self.gpu_job_queue if spec.gpu else self.job_queue,
            "jobDefinition": self.job_definition,
            "containerOverrides": overrides,
            "timeout": {"attemptDurationSeconds": max(MIN_TIMEOUT_S, spec.max_runtime_s)},
            "tags": {"stratus:job_id": spec.job_id, "stratus:kind": spec.kind},
            "propagateTags": True,
        }

    async def submit(self, spec: JobSpec) -> JobHandle:
        if not (self.job_queue and self.job_definition):
            raise DependencyFailed("Batch backend is not configured (job queue and definition are required)")
        request = self.submit_request(spec)
        try:
            response = await asyncio.to_thread(self._client.submit_job, **request)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "job backend") from e
        return JobHandle(backend=self.name, external_id=str(response["jobId"]))

    async def stop(self, handle: JobHandle) -> None:
        """terminate_job: cancels a queued job, stops a running one (SIGTERM, then SIGKILL), and is a
        no-op for a finished one."""
        try:
            await asyncio.to_thread(self._client.terminate_job, jobId=handle.external_id, reason=STOP_REASON)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "job backend") from e

    async def describe(self, handle: JobHandle) -> BackendStatus:
        try:
            response = await asyncio.to_thread(self._client.describe_jobs, jobs=[handle.external_id])
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "job backend") from e
        jobs = response.get("jobs") or []
        if not jobs:
            raise NotFound("Job not found in the job backend")
        job = jobs[0]
        status = str(job.get("status", ""))
        state = _STATES.get(status)
        if state is None:
            raise DependencyFailed("Job backend reported an unknown status", details={"status": status})
        if state != "failed":
            return BackendStatus(state, None)
        reason = job.get("statusReason")
        if reason == STOP_REASON:
            return BackendStatus("stopped", None)
        return BackendStatus("failed", _failure_reason(job))


def _failure_reason(job: dict[str, Any]) -> str | None:
    """statusReason, plus the container's own reason or exit code from the last attempt when known."""
    parts = [str(job["statusReason"])] if job.get("statusReason") else []
    attempts = job.get("attempts") or []
    container = (attempts[-1].get("container") or {}) if attempts else {}
    if container.get("reason"):
        parts.append(str(container["reason"]))
    elif container.get("exitCode") not in (None, 0):
        parts.append(f"exit code {container['exitCode']}")
    return "; ".join(parts) or None
