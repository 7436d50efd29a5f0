"""Custom tasks' AWS path under moto: user code goes to the network-isolated sandbox endpoint (its own
input prefix, which is all its role may read), never to the NLP endpoint; a pending run is finished by
the endpoint's output in S3; without a sandbox endpoint, runs are refused and give their slot back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import replace

import boto3
import pytest
from bson import ObjectId

from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sagemaker_async import INPUT_PREFIX, SANDBOX_INPUT_PREFIX, SageMakerAsyncInference
from stratus.composition import Container, build_container
from stratus.errors import DependencyFailed
from stratus.local.runtime import LocalPorts
from stratus.settings import Settings
from tests.integration.api.accounts import Account

BUCKET = "stratus-artifacts"
CODE = "def custom_function(text):\n    return text[::-1]"


def _build(settings: Settings, ports: LocalPorts, sandbox_endpoint: str) -> Container:
    s3 = boto3.client("s3", region_name="us-east-1")
    storage = S3Storage(s3, BUCKET)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    nlp = SageMakerAsyncInference(runtime, storage, bucket=BUCKET, endpoint_name="stratus-dev-nlp")
    sandbox = SageMakerAsyncInference(
        runtime, storage, bucket=BUCKET, endpoint_name=sandbox_endpoint, input_prefix=SANDBOX_INPUT_PREFIX
    )
    quick = settings.model_copy(update={"task_max_wait_s": 0.2, "custom_task_max_concurrent": 1})
    return build_container(quick, replace(ports, storage=storage, inference=nlp, custom_inference=sandbox))


@pytest.fixture
async def aws(settings: Settings, ports: LocalPorts, mocked_aws: None) -> AsyncIterator[Container]:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    container = _build(settings, ports, "stratus-dev-sandbox")
    await container.bootstrap()
    try:
        yield container
    finally:
        await container.close()


def _stored(prefix: str) -> list[str]:
    s3 = boto3.client("s3", region_name="us-east-1")
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix).get("Contents", [])]


async def test_a_custom_task_goes_to_the_sandbox_endpoint(aws: Container, alice: Account) -> None:
    user_id = ObjectId(alice.user_id)
    record = await aws.custom_tasks.run_code(
        user_id, tokenizer_code="", model_code="", function_code=CODE, input_text="abc", wait_s=0
    )
    assert record["status"] == "pending" and record["task"] == "custom"
    [key] = _stored(INPUT_PREFIX)
    assert key.startswith(SANDBOX_INPUT_PREFIX + "/")  # the only inputs the sandbox role may read
    s3 = boto3.client("s3", region_name="us-east-1")
    sent = json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())
    assert sent["task"] == "custom" and sent["inputs"][0]["function_code"] == CODE
    assert "source" not in sent  # the code names none of the user's downloaded models

    isolation = {"seccomp": "applied", "landlock": "applied (ABI 4)", "network_namespace": "missing: EPERM"}
    output = {"outputs": [{"ok": True, "result": "cba", "isolation": isolation, "stdout": "", "duration_ms": 12.5}],
              "model": "custom"}  # fmt: skip
    s3.put_object(Bucket=BUCKET, Key=record["watch"][0], Body=json.dumps(output).encode())
    done = await aws.tasks.get(user_id, record["_id"])
    assert done["status"] == "completed" and done["result"] == "cba"
    assert done["isolation"] == isolation and done["duration_ms"] == 12.5


async def test_a_run_the_sandbox_refused_is_a_failed_task(aws: Container, alice: Account) -> None:
    user_id = ObjectId(alice.user_id)
    record = await aws.custom_tasks.run_code(
        user_id, tokenizer_code="", model_code="", function_code=CODE, input_text="", wait_s=0
    )
    refusal = {"ok": False, "reason": "isolation_missing", "error": "Refused: required sandbox layers are missing",
               "isolation": {"landlock": "missing: ENOSYS"}}  # fmt: skip
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET,
        Key=record["watch"][0],
        Body=json.dumps({"outputs": [refusal], "model": "custom"}).encode(),
    )
    done = await aws.tasks.get(user_id, record["_id"])
    assert done["status"] == "failed" and done["reason"] == "isolation_missing"


async def test_without_a_sandbox_endpoint_runs_are_refused(
    settings: Settings, ports: LocalPorts, mocked_aws: None, alice: Account
) -> None:
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket=BUCKET)
    container = _build(settings, ports, "")
    await container.bootstrap()
    try:
        for _ in range(2):  # the refused run gives its slot back (the limit here is 1)
            with pytest.raises(DependencyFailed) as refused:
                await container.custom_tasks.run_code(
                    ObjectId(alice.user_id), tokenizer_code="", model_code="", function_code=CODE,
                    input_text="", wait_s=0,
                )  # fmt: skip
            assert refused.value.code == "INFERENCE_NOT_CONFIGURED"
        assert _stored(INPUT_PREFIX) == []
    finally:
        await container.close()
