"""The GPU is asked for: each job kind's resources pick the SageMaker instance type and the Batch queue."""

from __future__ import annotations

from typing import Any

import pytest

from stratus import capabilities
from stratus.adapters.aws.batch import BatchBackend
from stratus.adapters.aws.sagemaker import SageMakerBackend
from stratus.jobs.kinds import JobKind, Resources
from stratus.ports.jobs import JobSpec

GPU_KIND = JobKind(name="finetune", worker="w", resources=Resources(gpu=True, memory_mb=30_000))
CPU_KIND = JobKind(name="training", worker="w", resources=Resources(gpu=False, memory_mb=4096))


def spec(kind: JobKind) -> JobSpec:
    return JobSpec(
        job_id="6b15ce141058eda291030870",
        kind=kind.name,
        params={},
        output_prefix="users/u/jobs/j",
        max_runtime_s=kind.resources.max_runtime_s,
        gpu=kind.resources.gpu,
        memory_mb=kind.resources.memory_mb,
    )


def sagemaker(**extra: Any) -> SageMakerBackend:
    return SageMakerBackend(
        None,
        image_uri="img",
        role_arn="role",
        bucket="b",
        gpu_instance_type="ml.g5.xlarge",
        cpu_instance_type="ml.m5.large",
        **extra,
    )


@pytest.mark.parametrize(("kind", "instance"), [(GPU_KIND, "ml.g5.xlarge"), (CPU_KIND, "ml.m5.large")])
def test_sagemaker_instance_type_follows_the_kind(kind: JobKind, instance: str) -> None:
    request = sagemaker().training_job_request(spec(kind), "name")
    assert request["ResourceConfig"]["InstanceType"] == instance


def test_a_per_kind_instance_type_wins() -> None:
    backend = sagemaker(instance_types={"finetune": "ml.p4d.24xlarge"})
    assert (
        backend.training_job_request(spec(GPU_KIND), "n")["ResourceConfig"]["InstanceType"]
        == "ml.p4d.24xlarge"
    )
    assert (
        backend.training_job_request(spec(CPU_KIND), "n")["ResourceConfig"]["InstanceType"] == "ml.m5.large"
    )


def test_batch_sends_gpu_kinds_to_the_gpu_queue_with_a_gpu_requirement() -> None:
    backend = BatchBackend(None, job_queue="cpu-q", gpu_job_queue="gpu-q", job_definition="def")
    gpu = backend.submit_request(spec(GPU_KIND))
    cpu = backend.submit_request(spec(CPU_KIND))
    assert gpu["jobQueue"] == "gpu-q" and cpu["jobQueue"] == "cpu-q"
    assert {"type": "GPU", "value": "1"} in gpu["containerOverrides"]["resourceRequirements"]
    assert {"type": "MEMORY", "value": "30000"} in gpu["containerOverrides"]["resourceRequirements"]
    assert all(r["type"] != "GPU" for r in cpu["containerOverrides"]["resourceRequirements"])


def test_batch_without_a_gpu_queue_uses_the_one_queue() -> None:
    backend = BatchBackend(None, job_queue="q", job_definition="def")
    assert backend.submit_request(spec(GPU_KIND))["jobQueue"] == "q"


def test_every_registered_kind_declares_its_resources() -> None:
    kinds = capabilities.job_kinds()
    for name in kinds.names():
        resources = kinds.get(name).resources
        assert resources.memory_mb >= 512 and resources.max_runtime_s > 0, name
