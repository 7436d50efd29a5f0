"""SageMaker asynchronous inference under moto: input to S3, InvokeEndpointAsync, output polled from S3."""

from __future__ import annotations

import json

import boto3
import pytest

from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sagemaker_async import FAILURE_SEPARATOR, INPUT_PREFIX, SageMakerAsyncInference
from stratus.errors import DependencyFailed, NotFound
from stratus.ports.inference import InferencePending, InferenceRequest

BUCKET = "stratus-artifacts"
REQUEST = InferenceRequest(
    task="ner", model="spacy/en_core_web_sm", inputs=[{"text": "John works at Google"}]
)


@pytest.mark.usefixtures("aws")
async def test_pending_then_collected_from_the_output_location() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    storage = S3Storage(s3, BUCKET)
    backend = SageMakerAsyncInference(
        boto3.client("sagemaker-runtime", region_name="us-east-1"),
        storage,
        bucket=BUCKET,
        endpoint_name="stratus-nlp",
    )
    # WHEN the endpoint has not answered within the wait
    with pytest.raises(InferencePending) as pending:
        await backend.invoke(REQUEST, wait_s=0)
    # THEN the request body was stored for the endpoint to read
    [stored] = s3.list_objects_v2(Bucket=BUCKET, Prefix=INPUT_PREFIX)["Contents"]
    assert json.loads(s3.get_object(Bucket=BUCKET, Key=stored["Key"])["Body"].read())["task"] == "ner"
    # AND the result is picked up once the endpoint writes it
    reference = pending.value.reference
    output_key, _, failure_key = reference.partition(FAILURE_SEPARATOR)
    assert output_key and failure_key  # InvokeEndpointAsync names both places
    assert await backend.collect(reference) is None
    output = {
        "outputs": [{"entities": [{"type": "ORG", "text": "Google"}]}],
        "model": REQUEST.model,
        "batch_size": 3,
    }
    s3.put_object(Bucket=BUCKET, Key=output_key, Body=json.dumps(output).encode())
    result = await backend.collect(reference)
    assert (
        result is not None and result.outputs[0]["entities"][0]["text"] == "Google" and result.batch_size == 3
    )


@pytest.mark.usefixtures("aws")
async def test_failures_and_missing_configuration_are_reported() -> None:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    storage = S3Storage(s3, BUCKET)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    with pytest.raises(DependencyFailed, match="No inference endpoint"):
        await SageMakerAsyncInference(runtime, storage, bucket=BUCKET, endpoint_name="").invoke(
            REQUEST, wait_s=0
        )
    s3.put_object(
        Bucket=BUCKET, Key="failed.json", Body=b'{"error": "model_not_found", "message": "no such model"}'
    )
    backend = SageMakerAsyncInference(runtime, storage, bucket=BUCKET, endpoint_name="stratus-nlp")
    with pytest.raises(DependencyFailed, match="no such model"):
        await backend.collect("failed.json")
    # What the server's /invocations writes for an error: its fields and status, mapped as /invoke's are
    s3.put_object(
        Bucket=BUCKET,
        Key="missing.json",
        Body=b'{"error": "model_not_found", "message": "gone", "available": ["a"], "status": 404}',
    )
    with pytest.raises(NotFound, match="gone") as missing:
        await backend.collect("missing.json")
    assert missing.value.details == {"available": ["a"]}


@pytest.mark.usefixtures("aws")
async def test_a_failure_sagemaker_records_ends_the_wait() -> None:
    """A crashed or timed-out container leaves no output, only a failure object: collect reports it."""
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    backend = SageMakerAsyncInference(
        boto3.client("sagemaker-runtime", region_name="us-east-1"),
        S3Storage(s3, BUCKET),
        bucket=BUCKET,
        endpoint_name="stratus-nlp",
    )
    reference = f"inference/outputs/abc.out{FAILURE_SEPARATOR}inference/failures/abc.out"
    assert await backend.collect(reference) is None
    s3.put_object(Bucket=BUCKET, Key="inference/failures/abc.out", Body=b"Worker died: out of memory\n")
    with pytest.raises(DependencyFailed, match="Worker died: out of memory"):
        await backend.collect(reference)
