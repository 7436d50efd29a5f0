"""JobBackend on SageMaker training jobs: one training job per Stratus job, running the worker image."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import error_code, translate
from stratus.adapters.job_env import job_environment
from stratus.errors import DependencyFailed, InvalidInput, NotFound
from stratus.ports.jobs import BackendState, BackendStatus, JobHandle, JobSpec

MAX_NAME = 63
MAX_RUNTIME_S = 28 * 24 * 3600  # SageMaker's ceiling for MaxRuntimeInSeconds
VOLUME_GB = 30
# CreateTrainingJob's Environment: at most 100 entries, keys like C identifiers, values up to 512 characters.
MAX_ENV_ENTRIES = 100
MAX_ENV_VALUE = 512
_ENV_KEY = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]{0,511}$")
_NOT_NAME = re.compile(r"[^a-zA-Z0-9]+")

_STATES: dict[str, BackendState] = {
    "InProgress": "running",
    "Completed": "completed",
    "Failed": "failed",
    "Stopping": "running",  # not stopped until SageMaker says so
    "Stopped": "stopped",
}
# InProgress secondary statuses before the container runs.
_PENDING_SECONDARY = frozenset({"Starting", "Pending", "LaunchingMLInstances", "PreparingTrainingStack"})


def training_job_name(job_id: str) -> str:
    """`stratus-{job_id}-{8 hex}`: unique per submission, ≤63 chars, SageMaker's [a-zA-Z0-9-] pattern."""
    suffix = uuid.uuid4().hex[:8]
    room = MAX_NAME - len("stratus-") - len(suffix) - 1
    stem = _NOT_NAME.sub("-", job_id).strip("-")[:room].strip("-")
    return f"stratus-{stem}-{suffix}" if stem else f"stratus-{suffix}"


class SageMakerBackend:
    name = "sagemaker"

    def __init__(
        self,
        client: Any,
        *,
        image_uri: str,
        role_arn: str,
        bucket: str,
        gpu_instance_type: str,
        cpu_instance_type: str = "ml.m5.large",
        instance_types: Mapping[str, str] | None = None,
    ) -> None:
        self._client = client
        self.image_uri = image_uri
        self.role_arn = role_arn
        self.bucket = bucket
        self.gpu_instance_type = gpu_instance_type
        self.cpu_instance_type = cpu_instance_type
        self.instance_types = dict(instance_types or {})

    def instance_type(self, spec: JobSpec) -> str:
        """The kind's own type if one is configured, else the GPU or CPU type its resources ask for."""
        if spec.kind in self.instance_types:
            return self.instance_types[spec.kind]
        return self.gpu_instance_type if spec.gpu else self.cpu_instance_type

    def training_job_request(self, spec: JobSpec, name: str) -> dict[str, Any]:
        environment = _environment(spec)
        return {
            "TrainingJobName": name,
            "AlgorithmSpecification": {"TrainingImage": self.image_uri, "TrainingInputMode": "File"},
            "RoleArn": self.role_arn,
            "OutputDataConfig": {"S3OutputPath": f"s3://{self.bucket}/{spec.output_prefix.lstrip('/')}"},
            "ResourceConfig": {
                "InstanceType": self.instance_type(spec),
                "InstanceCount": 1,
                "VolumeSizeInGB": VOLUME_GB,
            },
            "StoppingCondition": {"MaxRuntimeInSeconds": max(1, min(spec.max_runtime_s, MAX_RUNTIME_S))},
            "Environment": environment,
            "EnableManagedSpotTraining": False,
            "Tags": [
                {"Key": "stratus:job_id", "Value": spec.job_id},
                {"Key": "stratus:kind", "Value": spec.kind},
            ],
        }

    async def submit(self, spec: JobSpec) -> JobHandle:
        if not (self.image_uri and self.role_arn):
            raise DependencyFailed("SageMaker backend is not configured (worker image and role are required)")
        name = training_job_name(spec.job_id)
        request = self.training_job_request(spec, name)
        try:
            await asyncio.to_thread(self._client.create_training_job, **request)
        except (ClientError, BotoCoreError) as e:
            raise translate(e, "job backend") from e
        return JobHandle(backend=self.name, external_id=name)

    async def stop(self, handle: JobHandle) -> None:
        try:
            await asyncio.to_thread(self._client.stop_training_job, TrainingJobName=handle.external_id)
        except ClientError as e:
            # SageMaker answers ValidationException when the job is already stopping, stopped or finished.
            if error_code(e) == "ValidationException":
                return
            raise translate(e, "job backend") from e
        except BotoCoreError as e:
            raise translate(e, "job backend") from e

    async def describe(self, handle: JobHandle) -> BackendStatus:
        try:
            job = await asyncio.to_thread(
                self._client.describe_training_job, TrainingJobName=handle.external_id
            )
        except ClientError as e:
            # A missing training job is a ValidationException ("Requested resource not found").
            message = str(e.response.get("Error", {}).get("Message", "")).lower()
            if error_code(e) == "ValidationException" and (
                "not found" in message or "could not find" in message
            ):
                raise NotFound("Job not found in the job backend") from e
            raise translate(e, "job backend") from e
        except BotoCoreError as e:
            raise translate(e, "job backend") from e
        status = str(job.get("TrainingJobStatus", ""))
        secondary = str(job.get("SecondaryStatus", ""))
        reason = job.get("FailureReason")
        if status == "Stopped" and secondary == "MaxRuntimeExceeded":
            # SageMaker "stops" a job that runs out of time; for us it did not finish: a failure.
            return BackendStatus("failed", reason or "Maximum runtime exceeded")
        if status == "InProgress" and secondary in _PENDING_SECONDARY:
            return BackendStatus("pending", None)
        state = _STATES.get(status)
        if state is None:
            raise DependencyFailed("Job backend reported an unknown status", details={"status": status})
        return BackendStatus(state, str(reason) if reason and state == "failed" else None)


def _environment(spec: JobSpec) -> dict[str, str]:
    environment = {str(k): str(v) for k, v in job_environment(spec).items()}
    if len(environment) > MAX_ENV_ENTRIES:
        raise InvalidInput(f"SageMaker jobs take at most {MAX_ENV_ENTRIES} environment variables")
    for key, value in environment.items():
        if not _ENV_KEY.match(key):
            raise InvalidInput(f"Invalid environment variable name for SageMaker: {key!r}")
        if len(value) > MAX_ENV_VALUE:
            raise InvalidInput(
                f"Environment variable {key} is {len(value)} characters; SageMaker allows {MAX_ENV_VALUE}"
            )
    return environment
