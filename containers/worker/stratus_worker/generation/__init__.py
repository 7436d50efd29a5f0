"""The `image_generation` and `video_generation` kinds: one diffusers generation per job.

Params (set by stratus.capabilities.media.service): `mode`, `model` ({name, builtin} or {name, source}
for a downloaded diffusers repository), the resolved generation parameters (seed included: the API picks
one when the request has none) and, for image-to-image and image-to-video, `image_key` (the uploaded
source image in object storage). Every denoising step publishes a progress event (step, total, eta_s);
at most every PREVIEW_INTERVAL_S one also carries a small preview (data URL), also written to
`preview.png` under the job's prefix for the status route. The output (PNG or H.264 MP4) and a
`generation.json` record (seed, model, resolved parameters, durations) go under the job's prefix.

SIGTERM (a cancel) interrupts the pipeline after the current step: the job ends `stopped`.
"""

from __future__ import annotations

import asyncio
import io
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stratus.capabilities.media import spec
from stratus.errors import ValidationFailed
from stratus_worker.generation import export, pipelines, preview, tiny
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome

# Phases of the work, in the durations record.
DURATION_KEYS = ("load_s", "generate_s", "encode_s", "total_s")


@dataclass
class StepReporter:
    """The per-step callback: progress every step, a preview at most every `interval_s`."""

    ctx: JobContext
    total: int
    interval_s: float = spec.PREVIEW_INTERVAL_S
    started: float = field(default_factory=time.monotonic)
    last_preview: float = float("-inf")
    preview_step: int | None = None
    preview_s: float = 0.0  # time spent making previews (reported separately)
    previews: int = 0

    def __call__(self, pipe: Any, index: int, timestep: Any, tensors: dict[str, Any]) -> dict[str, Any]:
        step = index + 1
        now = time.monotonic()
        elapsed = now - self.started
        metrics: dict[str, Any] = {"eta_s": round(elapsed / step * (self.total - step), 3)}
        if now - self.last_preview >= self.interval_s and "latents" in tensors:
            began = time.perf_counter()
            png = preview.preview_png(tensors["latents"])
            self._store_preview(png)
            self.preview_s += time.perf_counter() - began
            self.previews += 1
            self.last_preview, self.preview_step = now, step
            metrics["preview"] = preview.data_url(png)
        if self.preview_step is not None:
            metrics["preview_step"] = self.preview_step
        self.ctx.events.progress(
            "generating", epoch=0, total_epochs=0, step=step, total_steps=self.total,
            progress=100.0 * step / self.total, metrics=metrics,
        )  # fmt: skip
        if self.ctx.should_stop:
            raise JobStopped()  # out of the denoising loop, after this step
        return {}

    def legacy(self, index: int, timestep: Any, latents: Any) -> None:
        """The older `callback(step, timestep, latents)` of the text/video-to-video pipelines."""
        self(None, index, timestep, {"latents": latents})

    def _store_preview(self, png: bytes) -> None:
        asyncio.run(
            self.ctx.storage.put_bytes(self.ctx.artifact_key("preview.png"), png, content_type="image/png")
        )


def model_dir(ctx: JobContext, model: dict[str, Any]) -> Path:
    from stratus_worker.inference import downloaded
    from stratus_worker.inference.backends import default_cache_dir

    cache = default_cache_dir()
    if model.get("builtin"):
        return tiny.ensure_built(str(model["name"]), cache)
    source = model.get("source")
    if not isinstance(source, dict):
        raise JobFailed(f"Model '{model.get('name')}' has no files to load")
    try:
        return downloaded.fetch(ctx.storage, downloaded.check_source(source), cache)
    except Exception as e:
        raise JobFailed(f"Model '{model.get('name')}' could not be read: {e}") from e


def load_image(ctx: JobContext, key: str, width: int, height: int) -> Any:
    """The source image, decoded safely (Pillow's bomb guard at MAX_IMAGE_PIXELS), as RGB at the size."""
    from PIL import Image

    data = asyncio.run(ctx.storage.get_bytes(key))
    Image.MAX_IMAGE_PIXELS = spec.MAX_IMAGE_PIXELS
    try:
        with Image.open(io.BytesIO(data)) as opened:
            if opened.width * opened.height > spec.MAX_IMAGE_PIXELS:
                raise JobFailed(f"image: more than {spec.MAX_IMAGE_PIXELS} pixels")
            image = opened.convert("RGB")
    except (OSError, Image.DecompressionBombError, ValueError) as e:
        raise JobFailed(f"image: the file could not be decoded as an image ({e})") from e
    return image.resize((width, height), Image.Resampling.LANCZOS)


def generate(pipe: Any, mode: str, params: dict[str, Any], image: Any, reporter: StepReporter) -> Any:
    """Run the pipeline once; PIL images (image modes) or (F, H, W, 3) float frames (video modes)."""
    import torch

    generator = torch.Generator(device="cpu").manual_seed(int(params["seed"]))
    common: dict[str, Any] = {
        "prompt": params["prompt"],
        "negative_prompt": params.get("negative_prompt") or None,
        "num_inference_steps": int(params["num_inference_steps"]),
        "guidance_scale": float(params["guidance_scale"]),
        "generator": generator,
    }
    if mode in spec.VIDEO_MODES:  # these pipelines still take the older per-step callback
        common |= {"callback": reporter.legacy, "callback_steps": 1}
    else:
        common |= {"callback_on_step_end": reporter, "callback_on_step_end_tensor_inputs": ["latents"]}
    if mode == spec.TEXT_TO_IMAGE:
        return pipe(**common, width=params["width"], height=params["height"], output_type="pil").images
    if mode == spec.IMAGE_TO_IMAGE:
        return pipe(**common, image=image, strength=float(params["strength"]), output_type="pil").images
    if mode == spec.TEXT_TO_VIDEO:
        out = pipe(
            **common, width=params["width"], height=params["height"], num_frames=int(params["num_frames"]),
            output_type="np",
        )  # fmt: skip
        return out.frames[0]
    frames = [image] * int(params["num_frames"])
    return pipe(**common, video=frames, strength=float(params["strength"]), output_type="np").frames[0]


def steps_run(mode: str, params: dict[str, Any]) -> int:
    """How many denoising steps the pipeline runs: with a source image, `strength` of them."""
    steps = int(params["num_inference_steps"])
    if mode in (spec.IMAGE_TO_IMAGE, spec.IMAGE_TO_VIDEO):
        return max(int(steps * float(params["strength"])), 0)
    return steps


def run(ctx: JobContext) -> Outcome:
    began = time.monotonic()
    params = dict(ctx.params)
    mode = str(params.get("mode"))
    try:
        spec.check_params(mode, params)
    except ValidationFailed as e:
        raise JobFailed(e.message) from e
    model = dict(params.get("model") or {})
    total = steps_run(mode, params)
    ctx.events.progress(
        "loading", epoch=0, total_epochs=0, step=0, total_steps=total, progress=0.0, metrics={}
    )
    pipelines.configure_threads()
    path = model_dir(ctx, model)
    try:
        pipe = pipelines.load(path, mode)
    except ValueError as e:
        raise JobFailed(f"Model '{model.get('name')}': {e}") from e
    image = None
    if mode in (spec.IMAGE_TO_IMAGE, spec.IMAGE_TO_VIDEO):
        image = load_image(ctx, str(params["image_key"]), int(params["width"]), int(params["height"]))
    loaded = time.monotonic()
    reporter = StepReporter(ctx, max(total, 1))
    output = generate(pipe, mode, params, image, reporter)  # JobStopped out of it on SIGTERM
    generated = time.monotonic()
    artifacts: dict[str, str] = {}
    if mode in spec.VIDEO_MODES:
        local = ctx.workdir / "video.mp4"
        export.write_mp4(output, int(params["fps"]), local)
        key = ctx.artifact_key("video.mp4")
        asyncio.run(ctx.storage.put_file(key, local, content_type="video/mp4"))
        artifacts["video"] = key
        shape = {
            "width": int(output.shape[2]),
            "height": int(output.shape[1]),
            "frames": int(output.shape[0]),
        }
    else:
        key = ctx.artifact_key("image.png")
        asyncio.run(ctx.storage.put_bytes(key, export.png_bytes(output[0]), content_type="image/png"))
        artifacts["image"] = key
        shape = {"width": output[0].width, "height": output[0].height}
    if reporter.preview_step is not None:
        artifacts["preview"] = ctx.artifact_key("preview.png")
    finished = time.monotonic()
    durations = {
        "load_s": round(loaded - began, 3),
        "generate_s": round(generated - loaded, 3),
        "encode_s": round(finished - generated, 3),
        "total_s": round(finished - began, 3),
        "preview_s": round(reporter.preview_s, 4),
    }
    record = {
        "mode": mode,
        "seed": int(params["seed"]),
        "model": model.get("name"),
        "pipeline": type(pipe).__name__,
        "scheduler": type(pipe.scheduler).__name__,
        "device": str(pipe.device),
        "dtype": str(pipe.dtype).removeprefix("torch."),
        "params": {k: v for k, v in params.items() if k not in ("model", "mode")},
        "steps_run": total,
        "previews": reporter.previews,
        "durations": durations,
        **shape,
    }
    record_key = ctx.artifact_key("generation.json")
    asyncio.run(
        ctx.storage.put_bytes(record_key, json.dumps(record).encode(), content_type="application/json")
    )
    artifacts["record"] = record_key
    return Outcome(final_metrics=record, artifacts=artifacts)
