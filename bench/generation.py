"""A text-to-image generation through the local API (`stratus serve`: job, queue, worker subprocess,
events, storage) against the same pipeline called directly, with the same model, size, steps and seed.

Three figures per round, taken alternately:
- api: wall time from POST /api/text-to-image/generate to the job's terminal status message on the
  WebSocket, then one status read and the output PNG downloaded;
- direct process: a fresh Python process that imports diffusers, loads the same pipeline directory with
  from_pretrained and generates (what the worker subprocess has to do too);
- direct call: the pipeline call alone in a warm process (load excluded).
It also checks that all three give the same PNG bytes, and reports the preview cost: the worker's own
time spent making previews (generation.json `durations.preview_s`) and a microbenchmark of one preview.

Run: .venv/bin/python bench/generation.py [--size 256] [--steps 20] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from websockets.sync.client import connect

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/core"), str(ROOT / "containers/worker"), str(ROOT)]

from stratus.capabilities.media import spec  # noqa: E402
from stratus_worker.generation import export, pipelines, preview, tiny  # noqa: E402

TERMINAL = ("completed", "failed", "stopped")
DIRECT = """
import io, sys, time, torch
from diffusers import DiffusionPipeline
torch.set_num_threads(1)
pipe = DiffusionPipeline.from_pretrained(sys.argv[1]); pipe.set_progress_bar_config(disable=True)
size, steps, seed = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
image = pipe(prompt="a lighthouse at dusk", negative_prompt=None, width=size, height=size,
             num_inference_steps=steps, guidance_scale=7.5, generator=torch.Generator().manual_seed(seed)).images[0]
buffer = io.BytesIO(); image.save(buffer, format="PNG"); sys.stdout.buffer.write(buffer.getvalue())
"""


def direct_process(path: Path, size: int, steps: int, seed: int) -> tuple[float, bytes]:
    began = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", DIRECT, str(path), str(size), str(steps), str(seed)],
                         check=True, capture_output=True).stdout  # fmt: skip
    return time.perf_counter() - began, out


def direct_call(pipe: object, size: int, steps: int, seed: int) -> tuple[float, bytes]:
    import torch

    began = time.perf_counter()
    image = pipe(prompt="a lighthouse at dusk", negative_prompt=None, width=size, height=size,  # type: ignore[operator]
                 num_inference_steps=steps, guidance_scale=7.5,
                 generator=torch.Generator().manual_seed(seed)).images[0]  # fmt: skip
    data = export.png_bytes(image)
    return time.perf_counter() - began, data


def through_api(
    http: httpx.Client, auth: dict[str, str], size: int, steps: int, seed: int
) -> tuple[float, bytes, dict]:  # type: ignore[type-arg]
    body = {"prompt": "a lighthouse at dusk", "width": size, "height": size, "num_inference_steps": steps,
            "guidance_scale": 7.5, "seed": seed}  # fmt: skip
    token = auth["Authorization"].removeprefix("Bearer ")
    with connect(str(http.base_url).replace("http", "ws").rstrip("/") + f"/ws?token={token}") as ws:
        ws.recv()  # connected
        began = time.perf_counter()
        task = http.post(
            "/api/text-to-image/generate", headers=auth | {"Prefer": "respond-async"}, json=body
        ).json()
        ws.send(json.dumps({"action": "subscribe", "job_id": task["task_id"]}))
        while True:  # the job's terminal status message (no polling)
            message = json.loads(ws.recv())
            if message["type"] in ("status", "error") and message["data"].get("status") in TERMINAL:
                break
    status = http.get(f"/api/text-to-image/status/{task['task_id']}", headers=auth).json()
    assert status["status"] == "completed", status
    data = http.get(status["image_url"]).content
    return time.perf_counter() - began, data, status


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    state = Path(tempfile.mkdtemp(prefix="bench-generation-"))
    cache = state / "model-cache"
    os.environ["STRATUS_MODEL_CACHE"] = str(cache)
    os.environ["STRATUS_GENERATION_THREADS"] = "1"
    path = tiny.ensure_built(spec.TINY_IMAGE_MODEL, cache)
    pipelines.configure_threads()
    import torch

    torch.set_num_threads(1)
    pipe = pipelines.load(path, spec.TEXT_TO_IMAGE)
    port = 18931
    server = subprocess.Popen(
        [sys.executable, "-m", "stratus.local.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env={**os.environ, "STRATUS_STATE_DIR": str(state / "state"),
             "PYTHONPATH": f"{ROOT}/layers/core:{ROOT}/containers/worker",
             "STRATUS_RATE_LIMIT_USER": "1000000"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=600)
        for _ in range(300):
            try:
                if http.get("/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        creds = {"email": "bench@example.com", "password": "securepass123", "name": "Bench"}
        auth = {
            "Authorization": f"Bearer {http.post('/api/auth/register', json=creds).json()['access_token']}"
        }
        api, proc, call, preview_s, gen_s = [], [], [], [], []
        for r in range(args.rounds):
            seed = 1000 + r
            t_api, png_api, status = through_api(http, auth, args.size, args.steps, seed)
            t_proc, png_proc = direct_process(path, args.size, args.steps, seed)
            t_call, png_call = direct_call(pipe, args.size, args.steps, seed)
            assert png_api == png_proc == png_call, "the API and the direct pipeline gave different bytes"
            api.append(t_api), proc.append(t_proc), call.append(t_call)
            durations = status["durations"]
            preview_s.append(durations["preview_s"])
            gen_s.append(durations["generate_s"])
            print(f"round {r + 1}: api {t_api:.2f} s, direct process {t_proc:.2f} s, direct call {t_call:.2f} s, "
                  f"worker generate {durations['generate_s']:.2f} s (previews {durations['preview_s'] * 1000:.1f} ms)")  # fmt: skip
        latents = torch.randn(1, 4, args.size // 8, args.size // 8)
        began = time.perf_counter()
        for _ in range(50):
            preview.data_url(preview.preview_png(latents))
        one_preview_ms = (time.perf_counter() - began) / 50 * 1000
        m_api, m_proc, m_call = (statistics.median(x) for x in (api, proc, call))
        print(f"\n{args.size}x{args.size}, {args.steps} DDIM steps, tiny random SD pipeline, CPU (1 thread), "
              f"{args.rounds} rounds, medians; same PNG bytes from all three paths")  # fmt: skip
        print(f"api            {m_api:8.2f} s")
        print(
            f"direct process {m_proc:8.2f} s   api / direct process = {m_api / m_proc:.2f}x (target <= 1.10x)"
        )
        print(f"direct call    {m_call:8.2f} s   api / direct call    = {m_api / m_call:.2f}x")
        print(f"worker's generate_s (median) {statistics.median(gen_s):.2f} s; worker's preview time per job "
              f"{statistics.median(preview_s) * 1000:.1f} ms; one preview (projection + PNG + base64) "
              f"{one_preview_ms:.2f} ms at {args.size // 8}x{args.size // 8} latents")  # fmt: skip
    finally:
        server.terminate()
        server.wait(timeout=60)


if __name__ == "__main__":
    main()
