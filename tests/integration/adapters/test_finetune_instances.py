"""The AWS path of fine-tuning: template.yaml's defaults, read through Settings like a deployed
dispatcher reads them, send the registered `finetune` and `finetune_merge` kinds to GPU instances (per
kind) and tabular training to the CPU type; checked on training jobs created in moto."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from stratus import capabilities
from stratus.adapters.aws.sagemaker import SageMakerBackend
from stratus.ports.jobs import JobSpec
from stratus.settings import Settings
from tests.unit.test_template import load_template

REGION = "us-east-1"


def _spec(kind_name: str) -> JobSpec:
    kind = capabilities.job_kinds().get(kind_name)
    return JobSpec(
        job_id="65f0c0ffee0123456789abcd",
        kind=kind.name,
        params={},
        output_prefix="jobs/65f0c0ffee0123456789abcd",
        max_runtime_s=kind.resources.max_runtime_s,
        gpu=kind.resources.gpu,
        memory_mb=kind.resources.memory_mb,
    )


@pytest.mark.usefixtures("aws")
@pytest.mark.parametrize(
    ("kind", "instance"),
    [
        ("finetune", "ml.g5.2xlarge"),
        ("finetune_merge", "ml.g5.xlarge"),
        ("training", "ml.m5.large"),
        # Media generation (capabilities/media/spec.py): GPU kinds, video on the larger host.
        ("image_generation", "ml.g5.xlarge"),
        ("video_generation", "ml.g5.2xlarge"),
    ],
)
async def test_template_defaults_pick_the_instance_per_kind(
    kind: str, instance: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    template = load_template()
    env = template["Globals"]["Function"]["Environment"]["Variables"]
    defaults = {name: p.get("Default") for name, p in template["Parameters"].items()}
    for variable in (
        "STRATUS_SAGEMAKER_GPU_INSTANCE_TYPE",
        "STRATUS_SAGEMAKER_CPU_INSTANCE_TYPE",
        "STRATUS_SAGEMAKER_INSTANCE_TYPES",
    ):
        reference: Any = env[variable]
        if "Fn::If" in reference:  # set only when its parameter is: the default is
            reference = reference["Fn::If"][1]
        monkeypatch.setenv(variable, defaults[reference["Ref"]])
    settings = Settings()
    client = boto3.client("sagemaker", region_name=REGION)
    backend = SageMakerBackend(
        client,
        image_uri="123456789012.dkr.ecr.us-east-1.amazonaws.com/stratus-worker:latest",
        role_arn="arn:aws:iam::123456789012:role/stratus-sagemaker",
        bucket="artifacts",
        gpu_instance_type=settings.sagemaker_gpu_instance_type,
        cpu_instance_type=settings.sagemaker_cpu_instance_type,
        instance_types=settings.sagemaker_instance_types,
    )
    handle = await backend.submit(_spec(kind))
    job = client.describe_training_job(TrainingJobName=handle.external_id)
    assert job["ResourceConfig"]["InstanceType"] == instance


@pytest.mark.parametrize(
    ("instance_types", "gpu_type", "refused"),
    [
        ('{"finetune": "ml.g5.2xlarge"}', "ml.g5.xlarge", False),  # the template's default
        ("", "ml.p4d.24xlarge", False),  # no per-kind type: the GPU type
        ('{"finetune": "ml.m5.xlarge"}', "ml.g5.xlarge", True),  # a CPU instance
        ('{"finetune": "ml.trn1.2xlarge"}', "ml.g5.xlarge", True),  # Trainium: no CUDA for bitsandbytes
    ],
)
def test_qlora_is_refused_where_the_finetune_instance_cannot_do_4bit(
    instance_types: str, gpu_type: str, refused: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stratus.capabilities.finetune.spec import four_bit_refusal

    monkeypatch.setenv("STRATUS_SAGEMAKER_GPU_INSTANCE_TYPE", gpu_type)
    if instance_types:
        monkeypatch.setenv("STRATUS_SAGEMAKER_INSTANCE_TYPES", instance_types)
    settings = Settings().model_copy(update={"job_backend": "sagemaker"})
    reason = four_bit_refusal(settings)
    assert (reason is not None) == refused
    if reason:
        assert "no NVIDIA GPU" in reason and "STRATUS_SAGEMAKER_INSTANCE_TYPES" in reason


def test_qlora_locally_needs_bitsandbytes_and_batch_gpus_can(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from stratus.capabilities.finetune.spec import four_bit_refusal

    assert four_bit_refusal(Settings()) is None  # installed here (the ml extra)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "bitsandbytes" else real(name, *a)
    )
    assert "bitsandbytes" in str(four_bit_refusal(Settings()))
    assert four_bit_refusal(Settings().model_copy(update={"job_backend": "batch"})) is None
