"""Media generation (seed 002): text-to-image, image-to-image, text-to-video and image-to-video.

The limits and defaults are written once here: the API's request checks and the worker's own checks
(stratus_worker.generation) both read them. Two job kinds run the diffusers pipelines on a GPU container
(SageMaker / Batch in AWS; the local worker on the CPU): `image_generation` and `video_generation`, so
each can have its own instance type (template.yaml's SageMakerInstanceTypes). This module imports
nothing heavy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from stratus.errors import ValidationFailed
from stratus.jobs.kinds import JobKind, JobWebhooks, Resources
from stratus.schemas.options import FloatOption, IntOption

IMAGE_KIND_NAME = "image_generation"
VIDEO_KIND_NAME = "video_generation"
KIND_NAMES = (IMAGE_KIND_NAME, VIDEO_KIND_NAME)

# Modes (the worker's `mode` parameter) and the job kind that runs each.
TEXT_TO_IMAGE = "text-to-image"
IMAGE_TO_IMAGE = "image-to-image"
TEXT_TO_VIDEO = "text-to-video"
IMAGE_TO_VIDEO = "image-to-video"
MODES = {
    TEXT_TO_IMAGE: IMAGE_KIND_NAME,
    IMAGE_TO_IMAGE: IMAGE_KIND_NAME,
    TEXT_TO_VIDEO: VIDEO_KIND_NAME,
    IMAGE_TO_VIDEO: VIDEO_KIND_NAME,
}
VIDEO_MODES = (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)


# Sizes: multiples of 8 (the VAE halves the size three times), within these bounds.
SIZE_MULTIPLE = 8
IMAGE_SIZE = IntOption(default=512, ge=64, le=1024)
VIDEO_SIZE = IntOption(default=256, ge=64, le=512)
STEPS = IntOption(default=50, ge=1, le=150)
VIDEO_STEPS = IntOption(default=25, ge=1, le=100)
GUIDANCE = FloatOption(default=7.5, ge=0.0, le=30.0)
STRENGTH = FloatOption(default=0.75, ge=0.0, le=1.0)
FRAMES = IntOption(default=24, ge=2, le=64)
FPS = IntOption(default=8, ge=1, le=60)
MAX_PROMPT_CHARS = 2_000
MAX_SEED = 2**32 - 1
MAX_IMAGES = 1  # images per request (OpenAI's `n`)

# Uploaded source images: the file, and its decoded size (a small PNG can inflate to gigabytes).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 25_000_000

# Live progress: a preview image at most this often (seconds), at most this many pixels a side.
PREVIEW_INTERVAL_S = 0.5
PREVIEW_MAX_SIDE = 64

# The built-in models: tiny random pipelines built from configs (no diffusion weights ship in any
# package and the hub cannot be reached here). Their names say what they are.
TINY_IMAGE_MODEL = "stratus/tiny-random-stable-diffusion"
TINY_VIDEO_MODEL = "stratus/tiny-random-text-to-video"
BUILTIN_MODELS: dict[str, dict[str, Any]] = {
    TINY_IMAGE_MODEL: {
        "name": "Tiny random Stable Diffusion (test pipeline)",
        "description": (
            "A tiny StableDiffusionPipeline with RANDOM weights, built from configs on first use (UNet "
            "(32, 64), AutoencoderKL, a 2-layer CLIP text encoder of hidden 32): it exercises the real "
            "diffusers code paths and makes noise-like images, not pictures. Download a real diffusers "
            "repository (POST /models/download) and name it in model_id for real images."
        ),
        "modes": (TEXT_TO_IMAGE, IMAGE_TO_IMAGE),
        "pipeline": "StableDiffusionPipeline",
    },
    TINY_VIDEO_MODEL: {
        "name": "Tiny random text-to-video (test pipeline)",
        "description": (
            "A tiny TextToVideoSDPipeline with RANDOM weights (UNet3DConditionModel (32, 64)), built from "
            "configs on first use: real code paths and a playable MP4 of noise-like frames, not a real "
            "video model."
        ),
        "modes": (TEXT_TO_VIDEO, IMAGE_TO_VIDEO),
        "pipeline": "TextToVideoSDPipeline",
    },
}
# Aliases seed 002's examples use: they name the tiny pipelines until a real model is downloaded.
DEFAULT_MODEL = {
    TEXT_TO_IMAGE: TINY_IMAGE_MODEL,
    IMAGE_TO_IMAGE: TINY_IMAGE_MODEL,
    TEXT_TO_VIDEO: TINY_VIDEO_MODEL,
    IMAGE_TO_VIDEO: TINY_VIDEO_MODEL,
}
# The diffusers pipelines (model_index.json `_class_name`) a downloaded repository may hold, per mode.
IMAGE_PIPELINES = (
    "StableDiffusionPipeline",
    "StableDiffusionXLPipeline",
    "StableDiffusionImg2ImgPipeline",
    "StableDiffusionXLImg2ImgPipeline",
)
VIDEO_PIPELINES = ("TextToVideoSDPipeline", "VideoToVideoSDPipeline")


def modes_of_pipeline(pipeline: str | None) -> tuple[str, ...]:
    if pipeline in IMAGE_PIPELINES:
        return (TEXT_TO_IMAGE, IMAGE_TO_IMAGE)
    if pipeline in VIDEO_PIPELINES:
        return (TEXT_TO_VIDEO, IMAGE_TO_VIDEO)
    return ()


def field_error(field: str, message: str, *, code: str = "VALIDATION_ERROR") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", code=code, details=[{"field": field, "message": message}])


def check_size(field: str, value: int, option: IntOption) -> int:
    """A width or height: a multiple of 8 within the option's bounds (the worker checks again)."""
    if value % SIZE_MULTIPLE or not option.ge <= value <= option.le:
        raise field_error(field, f"must be a multiple of {SIZE_MULTIPLE} from {option.ge} to {option.le}")
    return value


def check_params(mode: str, params: Mapping[str, Any]) -> None:
    """The worker's own check of the resolved parameters (the API validated them already): a job sent
    around the API gets the same limits. Raises ValidationFailed naming the field."""
    if mode not in MODES:
        raise field_error("mode", f"must be one of {', '.join(MODES)}")
    video = mode in VIDEO_MODES
    size = VIDEO_SIZE if video else IMAGE_SIZE
    for name in ("width", "height"):
        check_size(name, int(params[name]), size)
    steps = VIDEO_STEPS if video else STEPS
    if not steps.ge <= int(params["num_inference_steps"]) <= steps.le:
        raise field_error("num_inference_steps", f"must be from {steps.ge} to {steps.le}")
    if not GUIDANCE.ge <= float(params["guidance_scale"]) <= GUIDANCE.le:
        raise field_error("guidance_scale", f"must be from {GUIDANCE.ge} to {GUIDANCE.le}")
    if len(str(params.get("prompt") or "")) > MAX_PROMPT_CHARS:
        raise field_error("prompt", f"at most {MAX_PROMPT_CHARS} characters")
    if not 0 <= int(params["seed"]) <= MAX_SEED:
        raise field_error("seed", f"must be from 0 to {MAX_SEED}")
    if (
        mode in (IMAGE_TO_IMAGE, IMAGE_TO_VIDEO)
        and not STRENGTH.ge <= float(params["strength"]) <= STRENGTH.le
    ):
        raise field_error("strength", f"must be from {STRENGTH.ge} to {STRENGTH.le}")
    if video:
        if not FRAMES.ge <= int(params["num_frames"]) <= FRAMES.le:
            raise field_error("num_frames", f"must be from {FRAMES.ge} to {FRAMES.le}")
        if not FPS.ge <= int(params["fps"]) <= FPS.le:
            raise field_error("fps", f"must be from {FPS.ge} to {FPS.le}")


def progress_view(job: Mapping[str, Any]) -> dict[str, Any]:
    """A generation's progress message: the denoising step, the total, the time left, and a preview
    (a data URL of a small PNG) when this event carries a new one."""
    metrics = job.get("metrics") or {}
    return {
        "status": job["status"],
        "progress": job.get("progress", 0.0),
        "step": job.get("current_step", 0),
        "total": job.get("total_steps", 0),
        "eta_s": metrics.get("eta_s"),
        "preview": metrics.get("preview"),
        "preview_step": metrics.get("preview_step"),
        "mode": (job.get("params") or {}).get("mode"),
    }


def _completed(job: Mapping[str, Any], metrics: Mapping[str, Any]) -> dict[str, Any]:
    return {"mode": (job.get("params") or {}).get("mode"), "seed": metrics.get("seed"),
            "model": metrics.get("model"), "artifacts": dict(job.get("artifacts") or {})}  # fmt: skip


_WEBHOOKS = JobWebhooks(
    started="generation.started", completed="generation.completed", failed="generation.failed"
)

# A GPU is what these are for; the local worker runs them on the CPU.
IMAGE_KIND = JobKind(
    name=IMAGE_KIND_NAME,
    worker="stratus_worker.generation",
    resources=Resources(gpu=True, memory_mb=16_384, max_runtime_s=1800),
    webhooks=_WEBHOOKS,
    progress_view=progress_view,
    completed_view=_completed,
)
VIDEO_KIND = JobKind(
    name=VIDEO_KIND_NAME,
    worker="stratus_worker.generation",
    resources=Resources(gpu=True, memory_mb=32_768, max_runtime_s=3600),
    webhooks=_WEBHOOKS,
    progress_view=progress_view,
    completed_view=_completed,
)
