"""The container's diffusion path on CUDA: fp16, a real scheduler, timing per denoising step.

For a session that is lent a GPU (not run on the CPU-only development machines). It exercises exactly
what the `image_generation` / `video_generation` worker does, through stratus_worker.generation:
the pipeline loaded with from_pretrained by `pipelines.load` (CUDA, float16), the per-step callback
with previews (StepReporter), PNG and H.264 MP4 export, and checks that the same seed gives the same
bytes on the GPU. With no real weights on the machine it uses the tiny random pipelines (the timings
then show the per-step overhead, not a real model's cost); pass --model-dir to time a real diffusers
directory (e.g. a Stable Diffusion 1.5 snapshot) at 512x512.

Run: python bench/gpu_diffusion_check.py [--model-dir DIR] [--size 512] [--steps 30] [--scheduler dpm]
Prints one JSON object (device, dtype, scheduler, per-step ms: median/p90, total, preview ms, determinism).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/core"), str(ROOT / "containers/worker")]

from stratus.capabilities.media import spec  # noqa: E402
from stratus_worker.generation import export, pipelines, preview, tiny  # noqa: E402


def _scheduler(pipe: Any, name: str) -> None:
    import diffusers

    classes = {
        "ddim": "DDIMScheduler",
        "dpm": "DPMSolverMultistepScheduler",
        "euler": "EulerDiscreteScheduler",
    }
    pipe.scheduler = getattr(diffusers, classes[name]).from_config(pipe.scheduler.config)


def main() -> None:
    import torch

    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--scheduler", choices=("ddim", "dpm", "euler"), default="dpm")
    parser.add_argument("--frames", type=int, default=16)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        sys.exit("no CUDA device: this check is for a GPU machine")
    device, dtype = pipelines.device_and_dtype("cuda")
    assert dtype == torch.float16
    cache = Path(tempfile.mkdtemp(prefix="gpu-diffusion-"))
    image_dir = args.model_dir or tiny.ensure_built(spec.TINY_IMAGE_MODEL, cache)
    report: dict[str, Any] = {"device": torch.cuda.get_device_name(0), "dtype": "float16",
                              "model": str(image_dir), "size": args.size, "steps": args.steps}  # fmt: skip

    began = time.perf_counter()
    pipe = pipelines.load(image_dir, spec.TEXT_TO_IMAGE, device=device, dtype=dtype)
    _scheduler(pipe, args.scheduler)
    report["load_s"] = round(time.perf_counter() - began, 2)
    report["scheduler"] = type(pipe.scheduler).__name__

    step_times: list[float] = []
    preview_times: list[float] = []
    last = [0.0]

    def on_step(p: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        torch.cuda.synchronize()
        now = time.perf_counter()
        step_times.append(now - last[0])
        t0 = time.perf_counter()
        preview.preview_png(tensors["latents"])
        preview_times.append(time.perf_counter() - t0)
        torch.cuda.synchronize()
        last[0] = time.perf_counter()
        return {}

    def run(seed: int) -> bytes:
        step_times.clear()
        preview_times.clear()
        torch.cuda.synchronize()
        last[0] = time.perf_counter()
        image = pipe(prompt="a lighthouse at dusk, oil painting", negative_prompt="blurry", width=args.size,
                     height=args.size, num_inference_steps=args.steps, guidance_scale=7.5,
                     generator=torch.Generator(device="cpu").manual_seed(seed), callback_on_step_end=on_step,
                     callback_on_step_end_tensor_inputs=["latents"]).images[0]  # fmt: skip
        return export.png_bytes(image)

    run(0)  # warm-up (cuDNN autotuning, allocator)
    began = time.perf_counter()
    first = run(42)
    total = time.perf_counter() - began
    steps_ms = sorted(t * 1000 for t in step_times)
    report["image"] = {
        "total_s": round(total, 3),
        "step_ms_median": round(statistics.median(steps_ms), 2),
        "step_ms_p90": round(steps_ms[int(0.9 * (len(steps_ms) - 1))], 2),
        "preview_ms_median": round(statistics.median(preview_times) * 1000, 3),
        "same_seed_same_bytes": run(42) == first,
        "peak_memory_gb": round(torch.cuda.max_memory_allocated() / 1e9, 2),
    }

    video_dir = tiny.ensure_built(spec.TINY_VIDEO_MODEL, cache)
    video = pipelines.load(video_dir, spec.TEXT_TO_VIDEO, device=device, dtype=dtype)
    began = time.perf_counter()
    frames = video(prompt="waves", width=256, height=256, num_frames=args.frames, num_inference_steps=args.steps,
                   generator=torch.Generator(device="cpu").manual_seed(1), output_type="np").frames[0]  # fmt: skip
    torch.cuda.synchronize()
    generated = time.perf_counter() - began
    out = cache / "check.mp4"
    export.write_mp4(frames, 8, out)
    report["video_tiny"] = {"frames": int(frames.shape[0]), "generate_s": round(generated, 3),
                            "mp4_bytes": out.stat().st_size}  # fmt: skip
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
