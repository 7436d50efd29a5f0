"""Recognition and audio through the local API next to the same models called directly, and the camera
stream's frame rate and memory under a camera faster than the worker.

Starts its own `stratus serve` in a temporary state directory. The baselines run in this process on
the same machine, with the worker's own model classes (stratus_worker.inference.vision / speech), so
the difference is what the API and the worker hop add (upload, base64, JSON, quota, task record):

- transcription: ~20 s of Piper speech; real-time factor (audio seconds per second of processing)
  through POST /api/audio/transcribe against faster-whisper called directly with the same settings
  (int8, beam 5, VAD). Target: the API's factor >= 0.95x the direct one.
- classification (EfficientNet-Lite0, scikit-image's chelsea) and face analysis (astronaut): p50
  latency through the API against the model alone (decode included on both sides).
- camera: 15 frames/s of the astronaut for `--camera-s` seconds on /ws/camera; answered frames per
  second, dropped frames, answer latency, and the memory (RSS) of `stratus serve` and its inference
  worker at the start and the end of the stream.

Usage: .venv/bin/python bench/perception.py [--requests 20] [--camera-s 20]
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

import httpx
import torch
from job_latency import Serve  # same directory: bench scripts run as `python bench/x.py`
from PIL import Image
from skimage import data
from websockets.asyncio.client import connect

from stratus_worker.inference import registry, speech, vision

PARAGRAPH = (
    "Stratus runs machine learning models for many users at once. Each request is checked by the API, "
    "sent to a warm worker that keeps its models loaded, and answered as soon as the model is done. "
    "Pictures are classified, faces are found and recognised, and speech is turned into text and back. "
    "When a camera sends frames faster than the worker can look at them, the oldest frames are dropped."
)


def _encoded(pixels: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _p50(samples: list[float]) -> float:
    return statistics.median(samples)


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def _family(pid: int) -> list[int]:
    """The process and its descendants (the inference worker is a child of `stratus serve`)."""
    found = [pid]
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += _family(int(child))
    return found


def _memory(pid: int) -> dict[str, float]:
    return {str(p): round(_rss_mb(p), 1) for p in _family(pid)}


def direct(wav: bytes, jpeg: bytes, astronaut: bytes, n: int) -> dict[str, Any]:
    whisper = speech.Transcriber(registry.get("openai/whisper-tiny.en").local_path())
    options = {"language": "en", "vad_filter": True, "prompt": None, "temperature": 0.0}
    whisper.run("transcription", {"audio": wav}, options)  # warm
    started = time.perf_counter()
    heard = whisper.run("transcription", {"audio": wav}, options)
    rtf = heard["duration"] / (time.perf_counter() - started)
    classifier = vision.Classifier(registry.get("efficientnet-lite0").local_path())
    faces = vision.Faces(registry.get("dlib/face-recognition-resnet").local_path())
    timings: dict[str, list[float]] = {"classify": [], "faces": []}
    for _ in range(n + 2):
        started = time.perf_counter()
        classifier.run("image-classification", {"image": jpeg}, {"top_k": 5})
        timings["classify"].append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        faces.run("face-analysis", {"image": astronaut}, {})
        timings["faces"].append((time.perf_counter() - started) * 1000)
    return {"rtf": rtf, "text": heard["text"], "classify_ms": timings["classify"][2:],
            "faces_ms": timings["faces"][2:]}  # fmt: skip


async def camera(base_url: str, token: str, frame: bytes, seconds: float, pid: int) -> dict[str, Any]:
    ws_url = base_url.replace("http", "ws") + f"/ws/camera?token={token}"
    answers: list[dict[str, Any]] = []
    async with connect(ws_url, max_size=None) as ws:
        await ws.send(frame)
        answers.append(json.loads(await ws.recv())["data"])  # warm
        before = _memory(pid)

        async def send() -> None:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                await ws.send(frame)
                await asyncio.sleep(1 / 15)

        async def receive() -> None:
            while True:
                answers.append(json.loads(await ws.recv())["data"])

        receiver = asyncio.create_task(receive())
        started = time.monotonic()
        await send()
        await asyncio.sleep(2)  # the last answers
        receiver.cancel()
        elapsed = time.monotonic() - started
        after = _memory(pid)
    streamed = answers[1:]
    return {
        "sent_fps": round(streamed[-1]["received"] / elapsed, 1),
        "answered_fps": round(len(streamed) / elapsed, 1),
        "dropped": streamed[-1]["dropped"],
        "received": streamed[-1]["received"],
        "latency_ms_p50": round(_p50([a["latency_ms"] for a in streamed]), 1),
        "rss_mb_start": before,
        "rss_mb_end": after,
    }


def through_api(wav: bytes, jpeg: bytes, astronaut: bytes, n: int, camera_s: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="stratus-bench-") as scratch:
        serve = Serve(Path(scratch) / "state")
        serve.start(timeout_s=180)
        try:
            with httpx.Client(base_url=serve.base_url, timeout=300) as client:
                creds = {"email": "bench@example.com", "password": "securepass123", "name": "Bench"}
                token = client.post("/api/auth/register", json=creds).json()["access_token"]
                headers = {"Authorization": f"Bearer {token}", "Prefer": "wait=25"}

                def post(path: str, field: str, content: bytes) -> float:
                    started = time.perf_counter()
                    response = client.post(path, headers=headers, files={field: ("f", content)})
                    if response.status_code != 200:
                        raise SystemExit(f"{path} answered {response.status_code}: {response.text}")
                    return (time.perf_counter() - started) * 1000

                post("/api/audio/transcribe", "audio", wav)  # warm
                transcribe_ms = post("/api/audio/transcribe", "audio", wav)
                for path, content in (("/api/image-recognition/classify", jpeg),
                                      ("/api/face-recognition/detect", astronaut)):  # fmt: skip
                    post(path, "image", content)
                    post(path, "image", content)
                classify = [post("/api/image-recognition/classify", "image", jpeg) for _ in range(n)]
                faces = [post("/api/face-recognition/detect", "image", astronaut) for _ in range(n)]
                assert serve.process is not None
                stream = asyncio.run(camera(serve.base_url, token, astronaut, camera_s, serve.process.pid))
            return {
                "transcribe_ms": transcribe_ms,
                "classify_ms": classify,
                "faces_ms": faces,
                "camera": stream,
            }
        finally:
            serve.stop()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--camera-s", type=float, default=20.0)
    args = parser.parse_args()

    voice = speech.Voice(registry.get("piper/en_US-joe-medium").local_path())
    spoken = voice.run("speech-synthesis", {"text": PARAGRAPH}, {"speed": 1.0, "format": "wav"})
    import base64

    wav = base64.b64decode(spoken["audio"])
    with wave.open(io.BytesIO(wav)) as reader:
        seconds = reader.getnframes() / reader.getframerate()
    jpeg, astronaut = _encoded(data.chelsea(), "JPEG"), _encoded(data.astronaut(), "JPEG")

    # One torch thread for the baseline: on a shared 2-core machine torch's default pool of 2 swings
    # between 80 ms and 2 s per EfficientNet call, which would flatter the API.
    torch.set_num_threads(1)
    alone = direct(wav, jpeg, astronaut, args.requests)
    api = through_api(wav, jpeg, astronaut, args.requests, args.camera_s)
    api_rtf = seconds / (api["transcribe_ms"] / 1000)
    print(f"audio: {seconds:.1f} s of speech")
    print(f"transcription RTF: direct {alone['rtf']:.1f}x, API {api_rtf:.1f}x real time "
          f"-> API/direct {api_rtf / alone['rtf']:.2f} (target >= 0.95)")  # fmt: skip
    for name in ("classify", "faces"):
        d, a = _p50(alone[f"{name}_ms"]), _p50(api[f"{name}_ms"])
        print(f"{name} p50: model alone {d:.1f} ms, through the API {a:.1f} ms (+{a - d:.1f} ms)")
    cam = api["camera"]
    print(f"camera: sent {cam['sent_fps']} fps, answered {cam['answered_fps']} fps, dropped "
          f"{cam['dropped']}/{cam['received']}, latency p50 {cam['latency_ms_p50']} ms; RSS MB "
          f"start {cam['rss_mb_start']} end {cam['rss_mb_end']}")  # fmt: skip
    print(json.dumps({"audio_s": seconds, "direct": alone, "api": api}, default=str))


if __name__ == "__main__":
    main()
