"""The camera stream (/ws/camera): the client sends frames, the server answers each frame it processes
with the faces (named when they match the user's registered faces) and detections in it.

Frames are never queued: one slot holds the newest frame not yet processed, and a frame that arrives
while another waits replaces it (counted in `dropped`). So a fast camera on a slow worker costs one
frame of memory, and every answer is about the most recent picture, not one from seconds ago.

Messages from the client: a binary message (JPEG or PNG bytes), or a text message with base64 (bare,
as a data URL, or as {"image": "..."}). Answers: {"type": "result", "data": {"frame", "faces",
"detections", "received", "dropped", "latency_ms"}}; a frame that is not an image gets {"type":
"error", "data": {"frame", "message"}} and the stream goes on.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect, status

from stratus.capabilities.perception import spec
from stratus.errors import DomainError
from stratus.local.websocket import authenticate

if TYPE_CHECKING:
    from stratus.capabilities.perception.service import PerceptionService


@dataclass(frozen=True)
class Frame:
    number: int
    image: bytes | None
    error: str | None
    received_at: float


class LatestFrame:
    """A one-frame slot: `put` replaces a frame still waiting, `take` waits for the next one (None once
    the stream has closed)."""

    def __init__(self) -> None:
        self._frame: Frame | None = None
        self._ready = asyncio.Event()
        self._closed = False
        self.received = 0
        self.dropped = 0

    def put(self, frame: Frame) -> None:
        self.received += 1
        if self._frame is not None:
            self.dropped += 1
        self._frame = frame
        self._ready.set()

    def close(self) -> None:
        self._closed = True
        self._ready.set()

    async def take(self) -> Frame | None:
        while self._frame is None:
            if self._closed:
                return None
            self._ready.clear()
            await self._ready.wait()
        frame, self._frame = self._frame, None
        return frame


def decode_frame(message: Mapping[str, Any]) -> tuple[bytes | None, str | None]:
    """(image bytes, None) or (None, why not)."""
    if message.get("bytes") is not None:
        data: bytes = message["bytes"]
    else:
        text = (message.get("text") or "").strip()
        if text.startswith("{"):
            try:
                text = str(json.loads(text).get("image") or "")
            except (ValueError, AttributeError):
                return None, "image: the message is not JSON with an `image` field"
        if text.startswith("data:"):
            text = text.partition(",")[2]
        if len(text) > spec.MAX_IMAGE_BYTES * 4 // 3 + 4:
            return None, f"image: larger than {spec.MAX_IMAGE_BYTES // (1024 * 1024)} MB"
        try:
            data = base64.b64decode(text, validate=True)
        except (binascii.Error, ValueError):
            return None, "image: not base64"
    if not data:
        return None, "image: the frame is empty"
    if len(data) > spec.MAX_IMAGE_BYTES:
        return None, f"image: larger than {spec.MAX_IMAGE_BYTES // (1024 * 1024)} MB"
    return data, None


async def stream(ws: WebSocket, user_id: Any, perception: PerceptionService) -> None:
    slot = LatestFrame()

    async def receive() -> None:
        number = 0
        try:
            while True:
                message = await ws.receive()
                if message["type"] == "websocket.disconnect":
                    return
                number += 1
                image, error = decode_frame(message)
                slot.put(Frame(number, image, error, time.perf_counter()))
        except (WebSocketDisconnect, RuntimeError):
            return
        finally:
            slot.close()

    reader = asyncio.create_task(receive())
    try:
        while (frame := await slot.take()) is not None:
            try:
                if frame.error is not None or frame.image is None:
                    raise DomainError(frame.error or "image: the frame is empty")
                result = await perception.camera_frame(user_id, frame.image)
            except DomainError as e:
                await ws.send_json({"type": "error", "data": {"frame": frame.number, "message": e.message}})
                continue
            latency = round((time.perf_counter() - frame.received_at) * 1000, 1)
            await ws.send_json({"type": "result", "data": {"frame": frame.number, **result,
                "received": slot.received, "dropped": slot.dropped, "latency_ms": latency}})  # fmt: skip
    except (WebSocketDisconnect, RuntimeError):
        pass  # the client went away mid-answer
    finally:
        reader.cancel()


router = APIRouter(tags=["recognition"])


@router.websocket("/ws/camera")
async def camera_stream(ws: WebSocket) -> None:
    """Frames in, faces and detections out; frames that arrive while one is being processed replace
    each other (see capabilities.perception.camera). Authenticated like /ws (`?token=` or the bearer
    subprotocol). Served by `stratus serve`; API Gateway's WebSocket API (128 KB frames, a Lambda per
    message) is no camera transport, so in AWS clients post frames to the HTTP routes instead."""
    container = ws.app.state.container
    caller = await authenticate(ws, container.auth)
    if caller is None:
        await ws.close(code=status.WS_1008_POLICY_VIOLATION)
        return
    principal, subprotocol = caller
    await ws.accept(subprotocol=subprotocol)
    await stream(ws, principal.user_id, container.perception)
