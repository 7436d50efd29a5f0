"""Streaming chat port: the inference worker's chat task, token deltas as they are generated.

Locally the inference server streams newline-delimited JSON over chunked HTTP; in AWS a real-time
SageMaker endpoint streams the same lines through InvokeEndpointWithResponseStream (the asynchronous
endpoint that serves the other tasks cannot stream).

Events, in order (one JSON object per line on the wire):
    {"type": "start", "model", "prompt_tokens", "dropped_messages"}
    {"type": "delta", "text"}                                  (any number)
    {"type": "done", "text", "finish_reason", "usage": {prompt_tokens, completion_tokens, total_tokens},
     "dropped_messages"}
    {"type": "error", "status", "error", "message", ...}        (instead of done; the stream ends)
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Protocol

from stratus.ports.inference import InferenceRequest


class ChatStreamer(Protocol):
    def stream(self, request: InferenceRequest) -> AsyncIterator[dict[str, Any]]:
        """The worker's events for one chat request (`request.task == "chat"`). Raises the domain
        errors of `worker_error` for an error before the first event; a mid-stream error arrives
        as an "error" event."""
        ...
