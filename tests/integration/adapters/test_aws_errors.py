"""The botocore -> domain error mapping, and the shared client configuration."""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import (
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from stratus.adapters.aws import clients
from stratus.adapters.aws._errors import translate
from stratus.adapters.aws.s3 import S3Storage
from stratus.adapters.aws.sqs import SqsQueue
from stratus.errors import DependencyFailed, DomainError, InvalidInput, NotFound, ServiceUnavailable
from stratus.settings import Settings


def client_error(code: str, status: int) -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": "arn:aws:iam::123456789012:secret detail"},
        "ResponseMetadata": {"HTTPStatusCode": status},
    }
    return ClientError(response, "SomeOperation")


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (client_error("ThrottlingException", 400), ServiceUnavailable),
        (client_error("SlowDown", 503), ServiceUnavailable),
        (client_error("TooManyRequestsException", 429), ServiceUnavailable),
        (client_error("InternalError", 500), ServiceUnavailable),
        (client_error("Whatever", 502), ServiceUnavailable),
        (client_error("NoSuchKey", 404), NotFound),
        (client_error("404", 404), NotFound),
        (client_error("ResourceNotFoundException", 400), NotFound),
        (client_error("NoSuchBucket", 404), DependencyFailed),
        (client_error("AWS.SimpleQueueService.NonExistentQueue", 400), DependencyFailed),
        (client_error("AccessDenied", 403), DependencyFailed),
        (client_error("ValidationException", 400), DependencyFailed),
        (EndpointConnectionError(endpoint_url="https://sqs.us-east-1.amazonaws.com"), ServiceUnavailable),
        (ConnectTimeoutError(endpoint_url="https://s3.amazonaws.com"), ServiceUnavailable),
        (ReadTimeoutError(endpoint_url="https://s3.amazonaws.com"), ServiceUnavailable),
        (NoCredentialsError(), DependencyFailed),
        (ParamValidationError(report="bad"), DependencyFailed),
    ],
)
def test_translate(error: Exception, expected: type[DomainError]) -> None:
    translated = translate(error, "storage")
    assert type(translated) is expected
    # Safe to show: the AWS message (ARNs, account ids) never leaks into what clients see.
    assert "123456789012" not in translated.message
    assert "123456789012" not in str(translated.details)


def test_translate_names_the_subject_of_a_not_found() -> None:
    assert (
        translate(client_error("NoSuchKey", 404), "storage", key="a/b").message
        == "Storage object not found (key=a/b)"
    )
    error = InvalidInput("x")
    assert translate(error, "storage") is error


async def test_unreachable_endpoint_is_service_unavailable() -> None:
    # Nothing listens on port 1: a real botocore connection error, through a real adapter.
    client = boto3.client(
        "sqs",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(retries={"mode": "standard", "max_attempts": 1}, connect_timeout=1),
    )
    queue = SqsQueue(client, "http://127.0.0.1:1/000000000000/jobs")
    with pytest.raises(ServiceUnavailable) as caught:
        await queue.send({"x": 1})
    assert isinstance(caught.value.__cause__, EndpointConnectionError)
    with pytest.raises(ServiceUnavailable):
        await queue.ping()

    s3 = boto3.client(
        "s3",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:1",
        config=Config(
            retries={"mode": "standard", "max_attempts": 1},
            connect_timeout=1,
            s3={"addressing_style": "path"},
        ),
    )
    with pytest.raises(ServiceUnavailable):
        await S3Storage(s3, "bucket").get_bytes("k")
    with pytest.raises(ServiceUnavailable):
        await S3Storage(s3, "bucket").ping()


# --- clients -----------------------------------------------------------------------------------


@pytest.fixture
def settings() -> Settings:
    clients.client.cache_clear()
    return Settings(aws_region="eu-west-1")


def test_clients_share_one_configuration(settings: Settings) -> None:
    for build in (clients.sqs, clients.events, clients.s3, clients.sagemaker, clients.batch):
        client: Any = build(settings)
        config = client.meta.config
        assert client.meta.region_name == "eu-west-1"
        assert config.retries == {"mode": "standard", "total_max_attempts": 3}
        assert (config.connect_timeout, config.read_timeout) == (
            clients.CONNECT_TIMEOUT_S,
            clients.READ_TIMEOUT_S,
        )
        assert build(settings) is client  # one per process


def test_s3_client_signs_v4_with_virtual_addressing(settings: Settings) -> None:
    config = clients.s3(settings).meta.config
    assert config.signature_version == "s3v4"
    assert config.s3 == {"addressing_style": "virtual"}


def test_apigw_management_client_targets_the_stage(settings: Settings) -> None:
    https = clients.apigw_management(settings, "https://abc.execute-api.eu-west-1.amazonaws.com/prod/")
    assert https.meta.endpoint_url == "https://abc.execute-api.eu-west-1.amazonaws.com/prod"
    wss = clients.apigw_management(settings, "wss://abc.execute-api.eu-west-1.amazonaws.com/prod")
    assert wss is https
    assert clients.apigw_management(settings, "") is not https  # no WebSocket API: still builds
