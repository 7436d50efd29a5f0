"""boto3 clients, built once per process (per Lambda container) and injected into the adapters.

Every client gets the same botocore settings: the "standard" retry mode (exponential backoff with jitter,
retries throttling and transient errors) capped at 3 attempts in all, and short timeouts, so a dependency
outage turns into a prompt 503 instead of a Lambda timeout. boto3 and botocore are imported on first use
so importing this module costs nothing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratus.settings import Settings

CONNECT_TIMEOUT_S = 3
READ_TIMEOUT_S = 15
MAX_ATTEMPTS = 3


@functools.cache
def client(service: str, region: str, endpoint_url: str | None = None) -> Any:
    """One client per (service, region, endpoint) per process. Clients are thread-safe once built."""
    import boto3
    from botocore.config import Config

    options: dict[str, Any] = {}
    if service == "s3":
        # SigV4 everywhere (presigned URLs included) and virtual-hosted-style URLs: path-style is deprecated.
        options = {"signature_version": "s3v4", "s3": {"addressing_style": "virtual"}}
    config = Config(
        region_name=region,
        # total_max_attempts counts the first try (botocore's "max_attempts" key counts retries only: 3 -> 4 calls).
        retries={"mode": "standard", "total_max_attempts": MAX_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT_S,
        read_timeout=READ_TIMEOUT_S,
        tcp_keepalive=True,
        user_agent_extra="stratus",
        **options,
    )
    # A session of its own: boto3's default session is not safe to build clients from concurrently.
    session = boto3.session.Session(region_name=region)
    return session.client(service, region_name=region, endpoint_url=endpoint_url or None, config=config)  # type: ignore[call-overload]


def sqs(settings: Settings) -> Any:
    return client("sqs", settings.aws_region)


def events(settings: Settings) -> Any:
    return client("events", settings.aws_region)


def s3(settings: Settings) -> Any:
    return client("s3", settings.aws_region)


def sagemaker(settings: Settings) -> Any:
    return client("sagemaker", settings.aws_region)


def sagemaker_runtime(settings: Settings) -> Any:
    return client("sagemaker-runtime", settings.aws_region)


def batch(settings: Settings) -> Any:
    return client("batch", settings.aws_region)


def apigw_management(settings: Settings, endpoint: str) -> Any:
    """The API Gateway Management API client for one WebSocket API stage.

    `endpoint` is https://{api-id}.execute-api.{region}.amazonaws.com/{stage}; a wss:// URL (what clients
    connect to) is accepted too. Empty when no WebSocket API is deployed: sends then fail, nothing else.
    """
    if endpoint.startswith("wss://"):
        endpoint = "https://" + endpoint.removeprefix("wss://")
    return client("apigatewaymanagementapi", settings.aws_region, endpoint.rstrip("/") or None)


class LazyClient:
    """A boto3 client created on first use.

    Creating a client costs tens to hundreds of milliseconds (SageMaker's ~0.3 s); the API Lambda
    rarely calls the job backends or the WebSocket management API, so it should not pay for them
    during its cold start.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self._factory = factory
        self._client: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._client is None:
            self._client = self._factory()
        return getattr(self._client, name)
