"""Seed 002's generation routes against `stratus serve`, on the built-in tiny random pipelines run by the
real worker subprocess: a PNG of the requested size at a signed URL, the same seed giving the same bytes,
previews and per-step progress on the WebSocket, image-to-image from an upload, playable H.264 MP4s for
text-to-video and image-to-video, OpenAI's b64_json, an Idempotency-Key, a cancel, and bad uploads
refused naming the field with nothing queued."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import httpx
import pytest
from PIL import Image
from websockets.asyncio.client import connect

from tests.e2e.server import ServeProcess, free_port, messages_until_done

pytestmark = pytest.mark.slow

T2I = {"prompt": "a lighthouse at dusk", "negative_prompt": "blurry", "width": 96, "height": 64,
       "num_inference_steps": 4, "guidance_scale": 7.5, "seed": 42}  # fmt: skip
WAIT = {"Prefer": "wait=25"}


@pytest.fixture(scope="module")
def media_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServeProcess]:
    env = {
        "STRATUS_MODEL_CACHE": str(tmp_path_factory.mktemp("model-cache")),
        "STRATUS_GENERATION_THREADS": "1",
    }
    server = ServeProcess(tmp_path_factory.mktemp("state"), free_port(), env)
    server.start()  # its output is read as it comes (ServeProcess), so the pipe never fills up
    yield server
    returncode, output = server.stop(timeout_s=60)
    assert returncode == 0, output[-5000:]
    assert "Stratus stopped" in output[-5000:]


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (20, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


def _bomb_png() -> bytes:
    """A valid PNG header announcing 40000 x 40000 pixels: a few bytes that would decode to 4.8 GB."""
    ihdr = struct.pack(">IIBBBBB", 40_000, 40_000, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk


async def _finished(http: httpx.AsyncClient, auth: dict[str, str], path: str, task_id: str) -> dict[str, Any]:
    async with asyncio.timeout(300):
        while True:
            body: dict[str, Any] = (await http.get(f"{path}/status/{task_id}", headers=auth)).json()
            if body["status"] not in ("pending", "processing"):
                return body
            await asyncio.sleep(1.0)


async def _file(http: httpx.AsyncClient, url: str) -> bytes:
    got = await http.get(url)
    assert got.status_code == 200, got.text
    return got.content


def _frames(data: bytes) -> list[Any]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return [f.to_ndarray(format="rgb24") for f in container.decode(stream)]


async def test_generation_routes_live(media_server: ServeProcess, tmp_path: Path) -> None:
    base = media_server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=120) as http:
        creds = {"email": "artist@example.com", "password": "securepass123", "name": "Artist"}
        token = (await http.post("/api/auth/register", json=creds)).json()["access_token"]
        auth = {"Authorization": f"Bearer {token}"}

        models = (await http.get("/api/text-to-image/models", headers=auth)).json()
        assert models[0]["id"] == "stratus/tiny-random-stable-diffusion"
        assert "RANDOM" in models[0]["description"] and {"id", "name", "description"} <= set(models[0])

        # Text-to-image, followed on the WebSocket: per-step progress, previews, then completed.
        async with connect(base.replace("http", "ws") + f"/ws?token={token}") as ws:
            assert json.loads(await ws.recv())["type"] == "connected"
            started = await http.post("/api/text-to-image/generate", headers=auth | {"Prefer": "respond-async"},
                                      json=T2I)  # fmt: skip
            assert started.status_code == 202, started.text
            task_id = started.json()["task_id"]
            assert started.headers["Location"] == f"/api/text-to-image/status/{task_id}"
            await ws.send(json.dumps({"action": "subscribe", "job_id": task_id}))
            async with asyncio.timeout(300):
                messages = await messages_until_done(ws)
        assert messages[-1]["data"]["status"] == "completed", messages[-1]
        steps = [m["data"] for m in messages if m["type"] == "progress" and m["data"].get("step")]
        assert [s["step"] for s in steps] == [1, 2, 3, 4] and all(s["total"] == 4 for s in steps)
        assert all(s["eta_s"] is not None for s in steps)
        previews = [s["preview"] for s in steps if s.get("preview")]
        assert previews and previews[0].startswith("data:image/png;base64,")
        Image.open(io.BytesIO(base64.b64decode(previews[0].split(",", 1)[1]))).verify()

        status = await _finished(http, auth, "/api/text-to-image", task_id)
        assert status["status"] == "completed" and status["progress"] == 100
        assert status["seed"] == 42 and status["model_id"] == "stratus/tiny-random-stable-diffusion"
        assert status["expires_at"] and status["durations"]["generate_s"] > 0
        assert status["preview_url"]
        first = await _file(http, status["image_url"])
        assert Image.open(io.BytesIO(first)).size == (96, 64)
        await asyncio.sleep(1.1)  # signatures expire on whole seconds
        again = (await http.get(f"/api/text-to-image/status/{task_id}", headers=auth)).json()
        assert again["image_url"] != status["image_url"]  # signed afresh on every read
        assert again["expires_at"] > status["expires_at"]

        # Same seed, same bytes (inline answer within Prefer: wait); another seed differs.
        # (200 when it ends within the wait; a loaded machine may take longer to start the worker: 202.)
        same = await http.post("/api/text-to-image/generate", headers=auth | WAIT, json=T2I)
        assert same.status_code in (200, 202), same.text
        if same.status_code == 200:
            assert same.json()["status"] == "completed" and same.json()["image_url"]
        same_done = await _finished(http, auth, "/api/text-to-image", same.json()["task_id"])
        assert await _file(http, same_done["image_url"]) == first

        # Idempotency-Key: the repeat is the same task.
        keyed = auth | {"Idempotency-Key": "gen-1", "Prefer": "respond-async"}
        one = (await http.post("/api/text-to-image/generate", headers=keyed, json=T2I | {"seed": 7})).json()
        two = (await http.post("/api/text-to-image/generate", headers=keyed, json=T2I | {"seed": 7})).json()
        assert one["task_id"] == two["task_id"]
        assert (await _finished(http, auth, "/api/text-to-image", one["task_id"]))["status"] == "completed"

        # Bad uploads: 4xx naming the field, nothing queued.
        jobs_before = len((await http.get("/api/jobs", headers=auth)).json()["jobs"])
        for data, code in ((b"not an image at all", 422), (_bomb_png(), 422), (b"", 422)):
            bad = await http.post("/api/image-to-image/generate", headers=auth,
                                  files={"image": ("x.png", data, "image/png")}, data={"prompt": "p"})  # fmt: skip
            assert bad.status_code == code, bad.text
            assert bad.json()["details"][0]["field"] == "image", bad.text
        off = await http.post("/api/text-to-image/generate", headers=auth, json=T2I | {"width": 100})
        assert off.status_code == 422 and "width" in off.text
        assert len((await http.get("/api/jobs", headers=auth)).json()["jobs"]) == jobs_before

        # Image-to-image from an upload.
        i2i = await http.post(
            "/api/image-to-image/generate", headers=auth | WAIT,
            files={"image": ("src.png", _png((120, 80)), "image/png")},
            data={"prompt": "the same, at night", "strength": "0.5", "num_inference_steps": "4", "seed": "3",
                  "width": "96", "height": "64"},
        )  # fmt: skip
        assert i2i.status_code in (200, 202), i2i.text
        done = await _finished(http, auth, "/api/image-to-image", i2i.json()["task_id"])
        assert done["status"] == "completed", done
        assert Image.open(io.BytesIO(await _file(http, done["image_url"]))).size == (96, 64)

        # Text-to-video and image-to-video: playable H.264 MP4s.
        t2v = await http.post("/api/text-to-video/generate", headers=auth | {"Prefer": "respond-async"},
                              json={"prompt": "waves", "num_frames": 4, "fps": 8, "num_inference_steps": 2,
                                    "width": 64, "height": 64, "seed": 5})  # fmt: skip
        assert t2v.status_code == 202, t2v.text
        video = await _finished(http, auth, "/api/text-to-video", t2v.json()["task_id"])
        assert video["status"] == "completed", video
        frames = _frames(await _file(http, video["video_url"]))
        assert len(frames) == 4 and frames[0].shape == (64, 64, 3)

        i2v = await http.post(
            "/api/image-to-video/generate", headers=auth | {"Prefer": "respond-async"},
            files={"image": ("src.png", _png((64, 64)), "image/png")},
            data={"num_frames": "3", "fps": "6", "num_inference_steps": "2", "strength": "1.0", "width": "64", "height": "64"},
        )  # fmt: skip
        assert i2v.status_code == 202, i2v.text
        animated = await _finished(http, auth, "/api/image-to-video", i2v.json()["task_id"])
        assert animated["status"] == "completed", animated
        assert len(_frames(await _file(http, animated["video_url"]))) == 3

        # OpenAI's shape, b64_json: the same image as the seed-002 route gave for the same parameters.
        request = {"prompt": T2I["prompt"], "negative_prompt": "blurry", "size": "96x64", "steps": 4, "seed": 42,
                   "response_format": "b64_json"}  # fmt: skip
        openai = await http.post(
            "/v1/images/generations", headers=auth | {"Idempotency-Key": "oa"}, json=request
        )
        if openai.status_code == 202:  # the worker took longer than the wait to start: ask again once done
            await _finished(http, auth, "/api/text-to-image", openai.json()["task_id"])
            openai = await http.post(
                "/v1/images/generations", headers=auth | {"Idempotency-Key": "oa"}, json=request
            )
        assert openai.status_code == 200, openai.text
        assert base64.b64decode(openai.json()["data"][0]["b64_json"]) == first

        # Cancel a long generation.
        long = await http.post("/api/text-to-image/generate", headers=auth | {"Prefer": "respond-async"},
                               json=T2I | {"num_inference_steps": 150, "width": 512, "height": 512})  # fmt: skip
        long_id = long.json()["task_id"]
        cancelled = await http.post(f"/api/jobs/{long_id}/cancel", headers=auth)
        assert cancelled.status_code in (200, 202), cancelled.text
        assert (await _finished(http, auth, "/api/text-to-image", long_id))["status"] == "cancelled"


def test_the_python_client_drives_every_generation_kind(media_server: ServeProcess) -> None:
    """stratus.client's generation methods against the live server: each kind completes, a media URL
    answers with the right bytes, and the client's idempotency key returns the same task."""
    import time

    from stratus.client import Client

    source = io.BytesIO()
    Image.new("RGB", (40, 24), (200, 120, 30)).save(source, format="PNG")
    with Client(media_server.base_url, timeout=120) as stratus:
        stratus.register("client-artist@example.com", "securepass123", "Client Artist")
        small = {"num_inference_steps": 2, "seed": 7}
        kite = {"strength": 0.6, "idempotency_key": "kite-1", **small}
        clip = {"num_frames": 3, "fps": 4, "width": 64, "height": 64, **small}
        started = {
            "text-to-image": stratus.generate_image("a red kite", width=64, height=64, **small),
            "image-to-image": stratus.transform_image(source.getvalue(), "a blue kite", **kite),
            "text-to-video": stratus.generate_video("waves", **clip),
            "image-to-video": stratus.animate_image(source.getvalue(), **clip),
        }
        again = stratus.transform_image(source.getvalue(), "a blue kite", **kite)
        assert again["task_id"] == started["image-to-image"]["task_id"]
        for kind, task in started.items():
            deadline = time.monotonic() + 300
            status = task
            while status["status"] not in ("completed", "failed") and time.monotonic() < deadline:
                time.sleep(0.5)
                status = stratus.media_status(task["task_id"], kind=kind)
            assert status["status"] == "completed", (kind, status)
            url = status.get("image_url") or status.get("video_url")
            body = httpx.get(url, timeout=30).content
            if kind.endswith("-to-image"):
                assert body[:8] == b"\x89PNG\r\n\x1a\n", kind
            else:
                assert body[4:8] == b"ftyp", kind  # an MP4
