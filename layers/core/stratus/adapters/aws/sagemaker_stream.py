"""The chat task's token stream in AWS: a real-time SageMaker endpoint serving the worker image, invoked
with InvokeEndpointWithResponseStream. The asynchronous endpoint that serves the other tasks cannot
stream, so chat has its own endpoint (STRATUS_CHAT_ENDPOINT_NAME; template.yaml section 10).

The container's /invocations answers a `"stream": true` chat request with newline-delimited JSON events
(stratus.ports.chat) in a chunked response; SageMaker hands them on as PayloadPart events, whose
boundaries need not match the lines, so the bytes are re-split here. botocore's event stream is a
blocking iterator: each read runs on a thread, so the event loop keeps serving while tokens arrive.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from stratus.adapters.aws._errors import translate
from stratus.errors import DependencyFailed
from stratus.ports.inference import InferenceRequest, worker_error

_END: dict[str, Any] = {}


class SageMakerChatStream:
    def __init__(self, runtime_client: Any, *, endpoint_name: str) -> None:
        self._runtime = runtime_client
        self._endpoint = endpoint_name

    async def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        if not self._endpoint:
            raise DependencyFailed("No chat endpoint is configured", code="INFERENCE_NOT_CONFIGURED")
        body = json.dumps({**request.body(), "stream": True}).encode()
        try:
            response = await asyncio.to_thread(
                self._runtime.invoke_endpoint_with_response_stream,
                EndpointName=self._endpoint,
                Body=body,
                ContentType="application/json",
                Accept="application/x-ndjson",
            )
        except Exception as e:
            raise _refused(e) from e
        events = iter(response["Body"])
        buffer = b""
        first = True
        try:
            while True:
                try:
                    event: dict[str, Any] = await asyncio.to_thread(next, events, _END)
                except Exception as e:
                    raise translate(e, "chat endpoint") from e
                if event is _END:
                    break
                if "ModelStreamError" in event or "InternalStreamFailure" in event:
                    failure = event.get("ModelStreamError") or event.get("InternalStreamFailure") or {}
                    raise DependencyFailed(
                        f"The chat endpoint failed mid-stream: {str(failure.get('Message', ''))[:300]}",
                        code="INFERENCE_FAILED",
                    )
                buffer += (event.get("PayloadPart") or {}).get("Bytes", b"")
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        data = json.loads(line)
                        if first and data.get("type") == "error" and "status" in data and "error" in data:
                            # The container refused the request before generating (JSON error body).
                            raise worker_error(int(data["status"]), data)
                        first = False
                        yield data
            if buffer.strip():
                data = json.loads(buffer)
                if "error" in data and "type" not in data:  # a plain error answer (not streamed)
                    raise worker_error(int(data.get("status") or 500), data)
                yield data
        finally:
            close = getattr(response["Body"], "close", None)
            if close is not None:
                await asyncio.to_thread(close)


def _refused(error: Exception) -> Exception:
    """The container's own error answer travels in a ModelError (its status and body)."""
    from botocore.exceptions import ClientError

    if isinstance(error, ClientError) and error.response.get("Error", {}).get("Code") == "ModelError":
        answer: dict[str, Any] = dict(error.response)
        status = int(answer.get("OriginalStatusCode") or 500)
        try:
            data = json.loads(str(answer.get("OriginalMessage") or "{}"))
        except ValueError:
            data = {}
        return worker_error(status, data if isinstance(data, dict) else {})
    return translate(error, "chat endpoint")
