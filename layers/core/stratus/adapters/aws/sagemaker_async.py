"""SageMaker asynchronous inference: the inference container behind an endpoint that scales to zero.

Input goes to S3, InvokeEndpointAsync returns where the output (or a failure) will appear; we poll
for up to the request's wait and otherwise hand back a reference that `collect` checks later, and the
keys to watch: the endpoint's SNS notification names one of them when the invocation ends, and the
job-events Lambda then completes the task (`notification_key`).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

from stratus.adapters.aws._errors import translate
from stratus.errors import DependencyFailed, NotFound
from stratus.ports.inference import InferencePending, InferenceRequest, InferenceResult, worker_error
from stratus.ports.storage import ObjectStorage

INPUT_PREFIX = "inference/inputs"
# Custom tasks' runs, for the sandbox endpoint (template.yaml SandboxExecutionRole reads only these), and
# the longest one invocation may take there (the sandbox's own wall-clock limit is shorter).
SANDBOX_INPUT_PREFIX = "inference/inputs/sandbox"
SANDBOX_INVOCATION_TIMEOUT_S = 300
POLL_S = 0.5


FAILURE_SEPARATOR = "|"  # S3 keys we generate never contain it


def object_key(s3_uri: str) -> str:
    """The key of an S3 URI (s3://bucket/a/b.out -> a/b.out)."""
    return urlparse(s3_uri).path.lstrip("/")


def notification_key(message: Mapping[str, Any]) -> str | None:
    """The object a SageMaker asynchronous inference notification (SNS, `InferenceResult`) is about:
    its output, or for a failure its failure object; None for any other message."""
    if message.get("eventSource") != "aws:sagemaker" or message.get("eventName") != "InferenceResult":
        return None
    response = message.get("responseParameters") or {}
    location = response.get("outputLocation") or response.get("failureLocation")
    return object_key(str(location)) if location else None


class SageMakerAsyncInference:
    def __init__(
        self,
        runtime_client: Any,
        storage: ObjectStorage,
        *,
        bucket: str,
        endpoint_name: str,
        input_prefix: str = INPUT_PREFIX,
        invocation_timeout_s: int = 3600,
    ) -> None:
        self._runtime = runtime_client
        self._storage = storage
        self._bucket = bucket
        self._endpoint = endpoint_name
        self._input_prefix = input_prefix
        self._invocation_timeout_s = invocation_timeout_s

    async def invoke(self, request: InferenceRequest, *, wait_s: float) -> InferenceResult:
        if not self._endpoint:
            raise DependencyFailed("No inference endpoint is configured", code="INFERENCE_NOT_CONFIGURED")
        key = f"{self._input_prefix}/{uuid.uuid4().hex}.json"
        body = request.body()
        await self._storage.put_bytes(key, json.dumps(body).encode(), content_type="application/json")
        try:
            response = await asyncio.to_thread(
                self._runtime.invoke_endpoint_async,
                EndpointName=self._endpoint,
                InputLocation=f"s3://{self._bucket}/{key}",
                ContentType="application/json",
                InvocationTimeoutSeconds=self._invocation_timeout_s,
            )
        except Exception as e:
            raise translate(e, "inference endpoint") from e
        watch = tuple(
            object_key(str(response[name]))
            for name in ("OutputLocation", "FailureLocation")
            if response.get(name)
        )
        reference = FAILURE_SEPARATOR.join(watch)
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            result = await self.collect(reference)
            if result is not None:
                return result
            if asyncio.get_running_loop().time() >= deadline:
                raise InferencePending(reference, watch=watch)
            await asyncio.sleep(POLL_S)

    async def collect(self, reference: str) -> InferenceResult | None:
        """`reference` is the output key, and where SageMaker puts a failure (the container crashed or
        timed out: our server itself answers errors in the output) after a separator."""
        output_key, _, failure_key = reference.partition(FAILURE_SEPARATOR)
        try:
            data = json.loads(await self._storage.get_bytes(output_key))
        except NotFound:
            failure = await self._failure(failure_key) if failure_key else None
            if failure is not None:
                raise DependencyFailed(
                    f"The inference endpoint failed: {failure[:500]}", code="INFERENCE_FAILED"
                ) from None
            return None
        if "error" in data:  # the server's /invocations puts errors in the body, with their status
            raise worker_error(int(data.get("status") or 500), data)
        return InferenceResult(
            outputs=list(data["outputs"]),
            model=str(data.get("model", "")),
            batch_size=int(data.get("batch_size", 1)),
            duration_ms=data.get("duration_ms"),
        )

    async def _failure(self, key: str) -> str | None:
        try:
            return (await self._storage.get_bytes(key)).decode("utf-8", "replace").strip()
        except NotFound:
            return None

    async def catalogue(self) -> list[dict[str, Any]]:
        return []
