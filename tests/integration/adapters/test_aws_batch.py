"""BatchBackend against moto's Batch (no Docker: jobs succeed at once, or fail on demand); the rest of the
status map and errors via Stubber."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from stratus.adapters.aws.batch import STOP_REASON, BatchBackend, batch_job_name
from stratus.errors import DependencyFailed, InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.jobs import BackendStatus, JobHandle, JobSpec

REGION = "us-east-1"


def spec(**overrides: Any) -> JobSpec:
    values: dict[str, Any] = {
        "job_id": "65f0c0ffee0123456789abcd",
        "kind": "train",
        "params": {"epochs": 3},
        "output_prefix": "jobs/65f0c0ffee0123456789abcd/",
        "max_runtime_s": 3600,
    }
    return JobSpec(**{**values, **overrides})


@pytest.fixture
def batch(aws: None) -> tuple[Any, BatchBackend]:
    iam = boto3.client("iam", region_name=REGION)
    role = iam.create_role(
        RoleName="batch-service",
        AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": []}),
    )["Role"]["Arn"]
    client = boto3.client("batch", region_name=REGION)
    env = client.create_compute_environment(
        computeEnvironmentName="stratus-env", type="UNMANAGED", state="ENABLED", serviceRole=role
    )["computeEnvironmentArn"]
    queue = client.create_job_queue(
        jobQueueName="stratus-jobs",
        state="ENABLED",
        priority=1,
        computeEnvironmentOrder=[{"order": 1, "computeEnvironment": env}],
    )["jobQueueArn"]
    client.register_job_definition(
        jobDefinitionName="stratus-worker",
        type="container",
        containerProperties={
            "image": "stratus-worker:latest",
            "resourceRequirements": [{"type": "VCPU", "value": "1"}, {"type": "MEMORY", "value": "2048"}],
        },
    )
    return client, BatchBackend(client, job_queue=queue, job_definition="stratus-worker")


async def test_submit_and_describe(batch: tuple[Any, BatchBackend]) -> None:
    client, backend = batch
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.batch.SubmitJob", lambda params, **_: sent.append(dict(params))
    )

    handle = await backend.submit(spec(gpu=True))

    assert handle.backend == "batch"
    [job] = client.describe_jobs(jobs=[handle.external_id])["jobs"]
    assert job["jobName"] == "stratus-65f0c0ffee0123456789abcd"
    assert job["timeout"] == {"attemptDurationSeconds": 3600}
    env = {e["name"]: e["value"] for e in job["container"]["environment"]}
    assert env["STRATUS_JOB_ID"] == "65f0c0ffee0123456789abcd"
    assert env["STRATUS_OUTPUT_PREFIX"] == "jobs/65f0c0ffee0123456789abcd/"
    assert json.loads(env["STRATUS_JOB_PARAMS"]) == {"epochs": 3}
    # moto keeps no resource overrides: read them off the validated request.
    assert sent[0]["containerOverrides"]["resourceRequirements"] == [
        {"type": "MEMORY", "value": "4096"},
        {"type": "GPU", "value": "1"},
    ]
    assert job["tags"]["stratus:job_id"] == "65f0c0ffee0123456789abcd"

    assert await backend.describe(handle) == BackendStatus("completed")  # moto's Docker-less jobs succeed
    await backend.stop(handle)  # terminating a finished job is a no-op


async def test_failed_jobs_report_failed(
    batch: tuple[Any, BatchBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    _, backend = batch
    monkeypatch.setenv("MOTO_SIMPLE_BATCH_FAIL_AFTER", "0")
    handle = await backend.submit(spec())
    status = await backend.describe(handle)
    assert status.state == "failed"


async def test_describe_unknown_job_is_not_found(batch: tuple[Any, BatchBackend]) -> None:
    _, backend = batch
    with pytest.raises(NotFound):
        await backend.describe(JobHandle("batch", "00000000-0000-0000-0000-000000000000"))


async def test_submit_to_a_missing_definition_is_a_dependency_failure(
    batch: tuple[Any, BatchBackend],
) -> None:
    client, backend = batch
    broken = BatchBackend(client, job_queue=backend.job_queue, job_definition="missing")
    with pytest.raises(DependencyFailed):
        await broken.submit(spec())


def test_job_names_fit_batch() -> None:
    assert batch_job_name("a.b/c d") == "stratus-a-b-c-d"
    assert len(batch_job_name("x" * 300)) == 128
    assert batch_job_name("...") == "stratus-job"


def test_request_shape() -> None:
    backend = BatchBackend(None, job_queue="q", job_definition="d")
    request = backend.submit_request(spec(max_runtime_s=5, env={"A": "1"}))
    assert request["timeout"] == {"attemptDurationSeconds": 60}  # Batch's minimum
    # The kind's memory, and no GPU for a kind that does not ask for one.
    assert request["containerOverrides"]["resourceRequirements"] == [{"type": "MEMORY", "value": "4096"}]
    assert {"name": "A", "value": "1"} in request["containerOverrides"]["environment"]
    with pytest.raises(InvalidInput):
        backend.submit_request(spec(env={"AWS_BATCH_JOB_ID": "x"}))


@pytest.fixture
def stubbed() -> tuple[Any, Stubber, BatchBackend]:
    client = boto3.client("batch", region_name=REGION)
    return client, Stubber(client), BatchBackend(client, job_queue="q", job_definition="d")


HANDLE = JobHandle("batch", "job-1")


def job(status: str, reason: str | None = None, container: dict[str, Any] | None = None) -> dict[str, Any]:
    described: dict[str, Any] = {
        "jobName": "stratus-j1",
        "jobId": "job-1",
        "jobQueue": "q",
        "status": status,
        "startedAt": 0,
        "jobDefinition": "d",
    }
    if reason:
        described["statusReason"] = reason
    if container:
        described["attempts"] = [{"container": container}]
    return {"jobs": [described]}


@pytest.mark.parametrize(
    ("response", "expected"),
    [
        (job("SUBMITTED"), BackendStatus("pending")),
        (job("PENDING"), BackendStatus("pending")),
        (job("RUNNABLE"), BackendStatus("pending")),
        (job("STARTING"), BackendStatus("pending")),
        (job("RUNNING"), BackendStatus("running")),
        (job("SUCCEEDED"), BackendStatus("completed")),
        (
            job("FAILED", "Job attempt duration exceeded timeout"),
            BackendStatus("failed", "Job attempt duration exceeded timeout"),
        ),
        (
            job("FAILED", "Essential container in task exited", {"exitCode": 137}),
            BackendStatus("failed", "Essential container in task exited; exit code 137"),
        ),
        (
            job("FAILED", None, {"reason": "OutOfMemoryError: Container killed"}),
            BackendStatus("failed", "OutOfMemoryError: Container killed"),
        ),
        (job("FAILED", STOP_REASON), BackendStatus("stopped")),
    ],
)
async def test_status_map(
    stubbed: tuple[Any, Stubber, BatchBackend], response: dict[str, Any], expected: BackendStatus
) -> None:
    _, stubber, backend = stubbed
    stubber.add_response("describe_jobs", response, {"jobs": ["job-1"]})
    with stubber:
        assert await backend.describe(HANDLE) == expected


async def test_stop_terminates_with_our_reason(stubbed: tuple[Any, Stubber, BatchBackend]) -> None:
    _, stubber, backend = stubbed
    stubber.add_response("terminate_job", {}, {"jobId": "job-1", "reason": STOP_REASON})
    stubber.add_client_error("terminate_job", "ServerException", http_status_code=500)
    with stubber:
        await backend.stop(HANDLE)
        with pytest.raises(ServiceUnavailable):
            await backend.stop(HANDLE)
    stubber.assert_no_pending_responses()
