"""Request and response models of the generation routes, their limits taken from spec.py."""

from typing import Any, Literal

from pydantic import ConfigDict, Field

from stratus.capabilities.media import spec
from stratus.schemas.base import Schema

_S = spec.IMAGE_SIZE
_V = spec.VIDEO_SIZE
Prompt = Field(min_length=1, max_length=spec.MAX_PROMPT_CHARS)
Negative = Field(default=None, max_length=spec.MAX_PROMPT_CHARS)
Seed = Field(
    default=None, ge=0, le=spec.MAX_SEED, description="Omitted: a random seed, recorded in the output"
)
ModelId = Field(default=None, min_length=1, max_length=200, description="Defaults to the built-in model")


class TextToImageRequest(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    prompt: str = Prompt
    negative_prompt: str | None = Negative
    width: int = Field(default=_S.default, ge=_S.ge, le=_S.le, multiple_of=spec.SIZE_MULTIPLE)
    height: int = Field(default=_S.default, ge=_S.ge, le=_S.le, multiple_of=spec.SIZE_MULTIPLE)
    num_inference_steps: int = Field(default=spec.STEPS.default, ge=spec.STEPS.ge, le=spec.STEPS.le)
    guidance_scale: float = Field(default=spec.GUIDANCE.default, ge=spec.GUIDANCE.ge, le=spec.GUIDANCE.le)
    seed: int | None = Seed
    model_id: str | None = ModelId


class TextToVideoRequest(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    prompt: str = Prompt
    negative_prompt: str | None = Negative
    num_frames: int = Field(default=spec.FRAMES.default, ge=spec.FRAMES.ge, le=spec.FRAMES.le)
    fps: int = Field(default=spec.FPS.default, ge=spec.FPS.ge, le=spec.FPS.le)
    num_inference_steps: int = Field(
        default=spec.VIDEO_STEPS.default, ge=spec.VIDEO_STEPS.ge, le=spec.VIDEO_STEPS.le
    )
    guidance_scale: float = Field(default=spec.GUIDANCE.default, ge=spec.GUIDANCE.ge, le=spec.GUIDANCE.le)
    width: int = Field(default=_V.default, ge=_V.ge, le=_V.le, multiple_of=spec.SIZE_MULTIPLE)
    height: int = Field(default=_V.default, ge=_V.ge, le=_V.le, multiple_of=spec.SIZE_MULTIPLE)
    seed: int | None = Seed
    model_id: str | None = ModelId


class OpenAIImageRequest(Schema):
    """OpenAI's POST /v1/images/generations (plus `seed`, `negative_prompt`, `steps`, `guidance_scale`)."""

    model_config = ConfigDict(extra="ignore", protected_namespaces=())

    prompt: str = Prompt
    model: str | None = ModelId
    n: int = Field(default=1, ge=1, le=spec.MAX_IMAGES)
    size: str = Field(default="512x512", pattern=r"^\d{2,4}x\d{2,4}$")
    response_format: Literal["url", "b64_json"] = "url"
    quality: str | None = None
    style: str | None = None
    user: str | None = None
    seed: int | None = Seed
    negative_prompt: str | None = Negative
    steps: int = Field(default=spec.STEPS.default, ge=spec.STEPS.ge, le=spec.STEPS.le)
    guidance_scale: float = Field(default=spec.GUIDANCE.default, ge=spec.GUIDANCE.ge, le=spec.GUIDANCE.le)


class GenerationStatus(Schema):
    """Seed 002's `{task_id, status, image_url | video_url, progress}` plus what a user of the field reads:
    the step, the time left, the latest preview, and once done the seed, model, resolved parameters and
    durations. URLs are signed for a short time (`expires_at`), signed again on every read."""

    model_config = ConfigDict(protected_namespaces=())

    task_id: str
    status: Literal["pending", "processing", "completed", "failed", "cancelled"]
    job_status: str
    mode: str
    progress: int = Field(ge=0, le=100)
    image_url: str | None = None
    video_url: str | None = None
    expires_at: str | None = None
    step: int = 0
    total: int = 0
    eta_s: float | None = None
    preview_url: str | None = None
    preview_step: int | None = None
    model_id: str | None = None
    seed: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    durations: dict[str, Any] | None = None
    width: int | None = None
    height: int | None = None
    frames: int | None = None
    error: str | None = None
    created_at: str | None = None
    completed_at: str | None = None


class MediaModel(Schema):
    id: str
    name: str
    description: str
    modes: list[str] = Field(default_factory=list)
    source: str = "builtin"


class OpenAIImage(Schema):
    url: str | None = None
    b64_json: str | None = None
    revised_prompt: str | None = None


class OpenAIImagesResponse(Schema):
    created: int
    data: list[OpenAIImage]
    task_id: str
    seed: int | None = None
    model: str | None = None
    status: str = "completed"
