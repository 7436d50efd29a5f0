"""The recognition and audio routes' AWS path: the SageMaker asynchronous endpoint under moto, S3 for
its input and output, the real database. The API sends media as base64 inside the stored request; a
transcription that outlives the wait becomes a task finished by the endpoint's output; an image
request that does (an endpoint scaling up from zero) answers 503 rather than hanging."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from dataclasses import replace

import boto3
import pytest
from bson import ObjectId

from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sagemaker_async import INPUT_PREFIX, SageMakerAsyncInference
from stratus.composition import Container, build_container
from stratus.errors import ServiceUnavailable
from stratus.local.runtime import LocalPorts
from stratus.settings import Settings
from tests.integration.api.accounts import Account

BUCKET = "stratus-artifacts"


@pytest.fixture
async def aws_container(settings: Settings, ports: LocalPorts, mocked_aws: None) -> AsyncIterator[Container]:
    s3 = boto3.client("s3", region_name="us-east-1")
    s3.create_bucket(Bucket=BUCKET)
    storage = S3Storage(s3, BUCKET)
    runtime = boto3.client("sagemaker-runtime", region_name="us-east-1")
    inference = SageMakerAsyncInference(runtime, storage, bucket=BUCKET, endpoint_name="stratus-dev-nlp")
    quick = settings.model_copy(update={"task_max_wait_s": 0.2})  # the endpoint under moto never answers
    container = build_container(quick, replace(ports, storage=storage, inference=inference))
    await container.bootstrap()
    try:
        yield container
    finally:
        await container.close()


def _stored_requests() -> list[dict[str, object]]:
    s3 = boto3.client("s3", region_name="us-east-1")
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET, Prefix=INPUT_PREFIX).get("Contents", [])]
    return [json.loads(s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()) for key in keys]


async def test_transcription_is_finished_by_the_endpoint_output(
    aws_container: Container, alice: Account
) -> None:
    user_id = ObjectId(alice.user_id)
    audio = b"RIFF....WAVEfmt some audio"
    record = await aws_container.perception.transcribe(
        user_id, audio, "whisper-1", {"language": "en"}, wait_s=0
    )
    assert record["status"] == "pending" and record["model"] == "openai/whisper-tiny.en"
    [sent] = _stored_requests()
    assert sent["task"] == "transcription" and sent["options"] == {"language": "en"}
    assert sent["inputs"] == [{"audio": base64.b64encode(audio).decode()}]
    output = {"outputs": [{"text": "Hello there.", "language": "en", "duration": 1.2,
                           "segments": [{"id": 0, "start": 0.0, "end": 1.1, "text": "Hello there."}]}],
              "model": "openai/whisper-tiny.en"}  # fmt: skip
    boto3.client("s3", region_name="us-east-1").put_object(
        Bucket=BUCKET, Key=record["watch"][0], Body=json.dumps(output).encode()
    )
    done = await aws_container.tasks.get(user_id, record["_id"])
    assert done["status"] == "completed" and done["result"]["text"] == "Hello there."


async def test_an_image_request_the_endpoint_does_not_answer_in_time_is_503(
    aws_container: Container, alice: Account
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"pixels"
    with pytest.raises(ServiceUnavailable) as refused:
        await aws_container.perception.classify(ObjectId(alice.user_id), png, None, 3)
    assert refused.value.code == "INFERENCE_WARMING_UP"
    [sent] = _stored_requests()
    assert sent["task"] == "image-classification" and sent["model"] == "efficientnet-lite0"
    assert sent["inputs"] == [{"image": base64.b64encode(png).decode()}] and sent["options"] == {"top_k": 3}
