"""/ws/camera over a real socket on the real inference worker: every answer is about the newest frame,
frames sent faster than they are processed are dropped (never queued), and bad frames are answered
with an error without ending the stream."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from PIL import Image
from skimage import data
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from stratus.composition import Container
from stratus.local.runtime import LocalPorts, build_local_app
from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and loads real models


@pytest.fixture
async def ws_base(container: Container, ports: LocalPorts) -> AsyncIterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config = uvicorn.Config(
        build_local_app(container, ports), host="127.0.0.1", port=port, lifespan="off",
        log_level="warning", ws="websockets-sansio",
    )  # fmt: skip
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.02)
    try:
        yield f"ws://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def _jpeg(pixels: Any) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG")
    return buffer.getvalue()


async def _answer(ws: Any) -> dict[str, Any]:
    message: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), 120))
    return message


async def test_camera_stream_drops_frames_it_cannot_keep_up_with(ws_base: str, alice: Account) -> None:
    with pytest.raises(InvalidStatus):
        async with connect(f"{ws_base}/ws/camera"):
            pass  # no token: refused

    astronaut = _jpeg(data.astronaut())
    async with connect(f"{ws_base}/ws/camera?token={alice.access_token}", max_size=None) as ws:
        await ws.send(astronaut)  # binary
        first = await _answer(ws)
        assert first["type"] == "result", first
        assert first["data"]["frame"] == 1 and len(first["data"]["faces"]) == 1
        assert any(d["label"] == "face" for d in first["data"]["detections"])

        await ws.send("not base64!")
        assert (await _answer(ws)) == {"type": "error", "data": {"frame": 2, "message": "image: not base64"}}

        # A burst far faster than the worker answers: frames 3..32, as JSON with base64 and as data URLs.
        encoded = base64.b64encode(astronaut).decode()
        for i in range(30):
            await ws.send(json.dumps({"image": encoded}) if i % 2 else f"data:image/jpeg;base64,{encoded}")
        answered = []
        while not answered or answered[-1]["frame"] != 32:
            message = await _answer(ws)
            assert message["type"] == "result", message
            answered.append(message["data"])
        frames = [a["frame"] for a in answered]
        assert frames == sorted(frames) and len(frames) < 30  # some were dropped, none answered twice
        last = answered[-1]
        assert last["received"] == 32 and last["dropped"] == 32 - 2 - len(frames)


async def test_the_camera_names_the_users_own_registered_faces(
    ws_base: str, client: Any, alice: Account, bob: Account
) -> None:
    """Camera frames are searched scaled down, and embedded only for a user with faces to match: a face
    registered from a full-size photo is still recognised in the stream, and only for its owner."""
    astronaut = _jpeg(data.astronaut())
    registered = await client.post(
        "/api/face-recognition/register", headers=alice.headers, data={"name": "Eileen"},
        files={"image": ("eileen.jpg", astronaut, "image/jpeg")},
    )  # fmt: skip
    assert registered.status_code == 201, registered.text
    for account, name in ((alice, "Eileen"), (bob, None)):
        async with connect(f"{ws_base}/ws/camera?token={account.access_token}", max_size=None) as ws:
            await ws.send(astronaut)
            answer = await _answer(ws)
        assert answer["type"] == "result", answer
        [face] = answer["data"]["faces"]
        assert face["name"] == name
        assert (face["face_id"] == registered.json()["face_id"]) is (name is not None)
        x, y, w, h = face["bbox"]  # in the frame's own pixels, though searched at a smaller size
        assert 150 < x < 200 and 40 < y < 90 and 80 < w < 120 and 80 < h < 120, face
