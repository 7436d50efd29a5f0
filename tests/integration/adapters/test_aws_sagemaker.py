"""SageMakerBackend: training jobs created and described in moto; stop and the status map via Stubber."""

from __future__ import annotations

import json
import re
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from stratus.adapters.aws.sagemaker import SageMakerBackend, training_job_name
from stratus.errors import DependencyFailed, InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.jobs import BackendStatus, JobHandle, JobSpec

REGION = "us-east-1"
IMAGE = "123456789012.dkr.ecr.us-east-1.amazonaws.com/stratus-worker:latest"
ROLE = "arn:aws:iam::123456789012:role/stratus-sagemaker"
NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")  # SageMaker's TrainingJobName pattern


def backend(client: Any) -> SageMakerBackend:
    return SageMakerBackend(
        client, image_uri=IMAGE, role_arn=ROLE, bucket="artifacts", gpu_instance_type="ml.g5.xlarge"
    )


def spec(**overrides: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": "65f0c0ffee0123456789abcd",
        "kind": "train",
        "params": {"epochs": 3, "lr": 0.01},
        "output_prefix": "jobs/65f0c0ffee0123456789abcd/",
        "max_runtime_s": 7200,
        "env": {"EXTRA": "1"},
    }
    return JobSpec(**{**values, **overrides})


@pytest.mark.usefixtures("aws")
async def test_submit_creates_the_training_job() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    sent: list[dict[str, Any]] = []
    # moto keeps no Environment: read it off the validated request instead.
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
    )

    handle = await backend(client).submit(spec(gpu=True))

    assert handle.backend == "sagemaker"
    assert handle.external_id.startswith("stratus-65f0c0ffee0123456789abcd-")
    job = client.describe_training_job(TrainingJobName=handle.external_id)
    assert job["AlgorithmSpecification"]["TrainingImage"] == IMAGE
    assert job["AlgorithmSpecification"]["TrainingInputMode"] == "File"
    assert job["RoleArn"] == ROLE
    assert job["OutputDataConfig"]["S3OutputPath"] == "s3://artifacts/jobs/65f0c0ffee0123456789abcd/"
    assert job["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30}
    assert job["StoppingCondition"]["MaxRuntimeInSeconds"] == 7200
    assert job["EnableManagedSpotTraining"] is False
    [request] = sent
    env = request["Environment"]
    assert all(isinstance(v, str) for v in env.values())
    assert env["STRATUS_JOB_ID"] == "65f0c0ffee0123456789abcd"
    assert env["STRATUS_JOB_KIND"] == "train"
    assert json.loads(env["STRATUS_JOB_PARAMS"]) == {"epochs": 3, "lr": 0.01}
    assert env["EXTRA"] == "1"
    tags = client.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]
    assert {"Key": "stratus:job_id", "Value": "65f0c0ffee0123456789abcd"} in tags

    # moto completes training jobs at once.
    assert await backend(client).describe(handle) == BackendStatus("completed")


@pytest.mark.usefixtures("aws")
async def test_cpu_jobs_use_the_cpu_instance_type_and_names_are_unique() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    sm = backend(client)
    first, second = await sm.submit(spec()), await sm.submit(spec())
    assert first.external_id != second.external_id
    job = client.describe_training_job(TrainingJobName=first.external_id)
    assert job["ResourceConfig"]["InstanceType"] == "ml.m5.large"


@pytest.mark.usefixtures("aws")
async def test_describe_a_missing_job_is_not_found() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    with pytest.raises(NotFound):
        await backend(client).describe(JobHandle("sagemaker", "stratus-missing"))


def test_training_job_names_fit_sagemaker() -> None:
    for job_id in ["65f0c0ffee0123456789abcd", "x" * 200, "a_b.c/d--e", "---", "ü"]:
        name = training_job_name(job_id)
        assert len(name) <= 63, name
        assert NAME.match(name), name
    assert training_job_name("a_b.c").startswith("stratus-a-b-c-")


async def test_oversized_environment_values_are_refused_before_aws() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    with Stubber(client), pytest.raises(InvalidInput, match="EXTRA"):
        await backend(client).submit(spec(env={"EXTRA": "x" * 600}))


@pytest.mark.usefixtures("aws")
async def test_long_params_travel_by_reference() -> None:
    # Params over the 512-character limit are stored by the dispatcher; the job gets their key.
    client = boto3.client("sagemaker", region_name=REGION)
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.sagemaker.CreateTrainingJob", lambda params, **_: sent.append(dict(params))
    )
    await backend(client).submit(spec(params={"text": "x" * 600}))
    environment = sent[0]["Environment"]
    assert "STRATUS_JOB_PARAMS" not in environment
    assert environment["STRATUS_JOB_PARAMS_KEY"] == "jobs/65f0c0ffee0123456789abcd/params.json"


async def test_unconfigured_backend_refuses_to_submit() -> None:
    client = boto3.client("sagemaker", region_name=REGION)
    sm = SageMakerBackend(client, image_uri="", role_arn="", bucket="b", gpu_instance_type="ml.g5.xlarge")
    with pytest.raises(DependencyFailed):
        await sm.submit(spec())


@pytest.fixture
def stubbed() -> tuple[Any, Stubber]:
    client = boto3.client("sagemaker", region_name=REGION)
    return client, Stubber(client)


HANDLE = JobHandle("sagemaker", "stratus-j1-0123abcd")


async def test_stop_is_idempotent(stubbed: tuple[Any, Stubber]) -> None:
    client, stubber = stubbed
    stubber.add_response("stop_training_job", {}, {"TrainingJobName": HANDLE.external_id})
    stubber.add_client_error(
        "stop_training_job",
        "ValidationException",
        "The request was rejected because the training job is in status Stopped.",
    )
    stubber.add_client_error("stop_training_job", "ThrottlingException", http_status_code=400)
    sm = backend(client)
    with stubber:
        await sm.stop(HANDLE)
        await sm.stop(HANDLE)  # already stopped: success
        with pytest.raises(ServiceUnavailable):
            await sm.stop(HANDLE)
    stubber.assert_no_pending_responses()


def described(status: str, secondary: str, reason: str | None = None) -> dict[str, Any]:
    response: dict[str, Any] = {
        "TrainingJobName": HANDLE.external_id,
        "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:123456789012:training-job/{HANDLE.external_id}",
        "ModelArtifacts": {"S3ModelArtifacts": "s3://artifacts/jobs/j1/model.tar.gz"},
        "TrainingJobStatus": status,
        "SecondaryStatus": secondary,
        "AlgorithmSpecification": {"TrainingInputMode": "File"},
        "ResourceConfig": {"VolumeSizeInGB": 30},
        "StoppingCondition": {},
        "CreationTime": "2025-01-01T00:00:00Z",
    }
    if reason:
        response["FailureReason"] = reason
    return response


@pytest.mark.parametrize(
    ("status", "secondary", "reason", "expected"),
    [
        ("InProgress", "Starting", None, BackendStatus("pending")),
        ("InProgress", "LaunchingMLInstances", None, BackendStatus("pending")),
        ("InProgress", "Downloading", None, BackendStatus("running")),
        ("InProgress", "Training", None, BackendStatus("running")),
        ("Stopping", "Stopping", None, BackendStatus("running")),
        ("Completed", "Completed", None, BackendStatus("completed")),
        (
            "Failed",
            "Failed",
            "AlgorithmError: out of memory",
            BackendStatus("failed", "AlgorithmError: out of memory"),
        ),
        ("Stopped", "Stopped", None, BackendStatus("stopped")),
        ("Stopped", "MaxRuntimeExceeded", None, BackendStatus("failed", "Maximum runtime exceeded")),
    ],
)
async def test_status_map(
    stubbed: tuple[Any, Stubber], status: str, secondary: str, reason: str | None, expected: BackendStatus
) -> None:
    client, stubber = stubbed
    stubber.add_response(
        "describe_training_job", described(status, secondary, reason), {"TrainingJobName": HANDLE.external_id}
    )
    with stubber:
        assert await backend(client).describe(HANDLE) == expected
