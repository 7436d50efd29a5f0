"""Seed 002's generation routes (/api/text-to-image, /api/image-to-image, /api/text-to-video,
/api/image-to-video) and OpenAI's POST /v1/images/generations. Each answers inline when the generation
ends within `Prefer: wait=N` (10 s by default, at most 25), else 202 with the task id and a Location to
poll; cancel with POST /api/jobs/{task_id}/cancel, follow on the WebSocket (`subscribe` to the task id)."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, File, Form, Response, UploadFile, status

from stratus.api.deps import Media
from stratus.api.idempotency import IdempotencyKey
from stratus.api.prefer import PreferHeader, wait_of
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.media import spec
from stratus.capabilities.media.schemas import (
    GenerationStatus,
    MediaModel,
    OpenAIImageRequest,
    OpenAIImagesResponse,
    TextToImageRequest,
    TextToVideoRequest,
)
from stratus.db.ids import ObjectIdStr, oid
from stratus.errors import DependencyFailed, ValidationFailed

if TYPE_CHECKING:
    from stratus.capabilities.media.service import MediaService

_IMG = spec.IMAGE_SIZE
_VID = spec.VIDEO_SIZE
StepsForm = Annotated[int, Form(ge=spec.STEPS.ge, le=spec.STEPS.le)]
VideoStepsForm = Annotated[int, Form(ge=spec.VIDEO_STEPS.ge, le=spec.VIDEO_STEPS.le)]
GuidanceForm = Annotated[float, Form(ge=spec.GUIDANCE.ge, le=spec.GUIDANCE.le)]
StrengthForm = Annotated[float, Form(ge=spec.STRENGTH.ge, le=spec.STRENGTH.le)]
SeedForm = Annotated[int | None, Form(ge=0, le=spec.MAX_SEED)]
ModelForm = Annotated[str | None, Form(min_length=1, max_length=200)]
PromptForm = Annotated[str, Form(max_length=spec.MAX_PROMPT_CHARS)]
NegativeForm = Annotated[str | None, Form(max_length=spec.MAX_PROMPT_CHARS)]
ImageSizeForm = Annotated[int | None, Form(ge=_IMG.ge, le=_IMG.le, multiple_of=spec.SIZE_MULTIPLE)]
VideoSizeForm = Annotated[int | None, Form(ge=_VID.ge, le=_VID.le, multiple_of=spec.SIZE_MULTIPLE)]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"model": GenerationStatus, "description": "Still running: poll Location or follow the WebSocket"}
}
_PATHS = {
    spec.TEXT_TO_IMAGE: "/api/text-to-image",
    spec.IMAGE_TO_IMAGE: "/api/image-to-image",
    spec.TEXT_TO_VIDEO: "/api/text-to-video",
    spec.IMAGE_TO_VIDEO: "/api/image-to-video",
}


async def _answer(media: MediaService, job: dict[str, Any], response: Response) -> dict[str, Any]:
    body = await media.view(job)
    if body["status"] in ("pending", "processing"):
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"{_PATHS[body['mode']]}/status/{body['task_id']}"
    return body


def _router(mode: str) -> APIRouter:
    return APIRouter(
        prefix=_PATHS[mode], tags=["generation"], route_class=StratusRoute, dependencies=[RateLimit]
    )


text_to_image = _router(spec.TEXT_TO_IMAGE)
image_to_image = _router(spec.IMAGE_TO_IMAGE)
text_to_video = _router(spec.TEXT_TO_VIDEO)
image_to_video = _router(spec.IMAGE_TO_VIDEO)


@text_to_image.post("/generate", response_model=GenerationStatus, responses=_RESPONSES)
async def generate_image(
    body: TextToImageRequest, user: CurrentUser, media: Media, response: Response,
    prefer: PreferHeader = None, key: IdempotencyKey = None,
) -> dict[str, Any]:  # fmt: skip
    """A PNG of `width` x `height` (multiples of 8). The same seed, model and parameters give the same
    bytes; without `seed` one is picked and recorded."""
    params = body.model_dump(exclude={"model_id"})
    job = await media.generate(user.user_id, spec.TEXT_TO_IMAGE, params, model_id=body.model_id,
                               idempotency_key=key, wait_s=wait_of(prefer))  # fmt: skip
    return await _answer(media, job, response)


@image_to_image.post("/generate", response_model=GenerationStatus, responses=_RESPONSES)
async def transform_image(
    image: Annotated[UploadFile, File(description="Source image (PNG, JPEG, WebP, GIF, BMP)")],
    user: CurrentUser,
    media: Media,
    response: Response,
    prompt: Annotated[str, Form(min_length=1, max_length=spec.MAX_PROMPT_CHARS)],
    negative_prompt: NegativeForm = None,
    strength: StrengthForm = spec.STRENGTH.default,
    num_inference_steps: StepsForm = spec.STEPS.default,
    guidance_scale: GuidanceForm = spec.GUIDANCE.default,
    seed: SeedForm = None,
    model_id: ModelForm = None,
    width: ImageSizeForm = None,
    height: ImageSizeForm = None,
    prefer: PreferHeader = None,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """The source image redrawn toward `prompt`: `strength` 0 keeps it, 1 ignores it. The output has the
    source's aspect ratio (longer side 512) unless `width` and `height` are given."""
    params = {"prompt": prompt, "negative_prompt": negative_prompt, "strength": strength,
              "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale, "seed": seed,
              "width": width, "height": height}  # fmt: skip
    data = await _read(image)
    job = await media.generate(user.user_id, spec.IMAGE_TO_IMAGE, params, model_id=model_id, image=data,
                               idempotency_key=key, wait_s=wait_of(prefer))  # fmt: skip
    return await _answer(media, job, response)


@text_to_video.post("/generate", response_model=GenerationStatus, responses=_RESPONSES)
async def generate_video(
    body: TextToVideoRequest, user: CurrentUser, media: Media, response: Response,
    prefer: PreferHeader = None, key: IdempotencyKey = None,
) -> dict[str, Any]:  # fmt: skip
    """An MP4 (H.264) of `num_frames` frames at `fps`."""
    params = body.model_dump(exclude={"model_id"})
    job = await media.generate(user.user_id, spec.TEXT_TO_VIDEO, params, model_id=body.model_id,
                               idempotency_key=key, wait_s=wait_of(prefer))  # fmt: skip
    return await _answer(media, job, response)


@image_to_video.post("/generate", response_model=GenerationStatus, responses=_RESPONSES)
async def animate_image(
    image: Annotated[UploadFile, File(description="Source image (PNG, JPEG, WebP, GIF, BMP)")],
    user: CurrentUser,
    media: Media,
    response: Response,
    num_frames: Annotated[int, Form(ge=spec.FRAMES.ge, le=spec.FRAMES.le)] = spec.FRAMES.default,
    fps: Annotated[int, Form(ge=spec.FPS.ge, le=spec.FPS.le)] = spec.FPS.default,
    prompt: PromptForm = "",
    negative_prompt: NegativeForm = None,
    strength: StrengthForm = spec.STRENGTH.default,
    num_inference_steps: VideoStepsForm = spec.VIDEO_STEPS.default,
    guidance_scale: GuidanceForm = spec.GUIDANCE.default,
    seed: SeedForm = None,
    model_id: ModelForm = None,
    width: VideoSizeForm = None,
    height: VideoSizeForm = None,
    prefer: PreferHeader = None,
    key: IdempotencyKey = None,
) -> dict[str, Any]:
    """An MP4 (H.264) animating the source image: the image repeated as a video, noised to `strength`
    and denoised by the video model (optionally toward `prompt`)."""
    params = {"prompt": prompt, "negative_prompt": negative_prompt, "strength": strength,
              "num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale, "seed": seed,
              "num_frames": num_frames, "fps": fps, "width": width, "height": height}  # fmt: skip
    data = await _read(image)
    job = await media.generate(user.user_id, spec.IMAGE_TO_VIDEO, params, model_id=model_id, image=data,
                               idempotency_key=key, wait_s=wait_of(prefer))  # fmt: skip
    return await _answer(media, job, response)


async def _read(upload: UploadFile) -> bytes:
    return await upload.read(spec.MAX_IMAGE_BYTES + 1)


def _add_reads(router: APIRouter, mode: str) -> None:
    async def get_status(task_id: ObjectIdStr, user: CurrentUser, media: Media) -> dict[str, Any]:
        job = await media.get(user.user_id, oid(task_id, what="Task"), (mode,))
        return await media.view(job)

    async def list_models(user: CurrentUser, media: Media) -> list[dict[str, Any]]:
        return await media.list_models(user.user_id, (mode,))

    get_status.__doc__ = f"A {mode} task: status, progress (0-100), step, eta, preview and output URLs."
    list_models.__doc__ = f"The models that do {mode}: built-in test pipelines and your downloaded ones."
    router.add_api_route("/status/{task_id}", get_status, methods=["GET"], response_model=GenerationStatus,
                         name=f"{mode}-status")  # fmt: skip
    router.add_api_route("/models", list_models, methods=["GET"], response_model=list[MediaModel],
                         name=f"{mode}-models")  # fmt: skip


for _mode, _r in ((spec.TEXT_TO_IMAGE, text_to_image), (spec.IMAGE_TO_IMAGE, image_to_image),
                  (spec.TEXT_TO_VIDEO, text_to_video), (spec.IMAGE_TO_VIDEO, image_to_video)):  # fmt: skip
    _add_reads(_r, _mode)


openai = APIRouter(prefix="/v1/images", tags=["openai"], route_class=StratusRoute, dependencies=[RateLimit])


@openai.post(
    "/generations",
    response_model=OpenAIImagesResponse,
    responses={
        202: {"model": OpenAIImagesResponse, "description": "Still running: empty `data`, the task's status"}
    },
)
async def images_generations(
    body: OpenAIImageRequest, user: CurrentUser, media: Media, response: Response,
    prefer: PreferHeader = None, key: IdempotencyKey = None,
) -> dict[str, Any]:  # fmt: skip
    """OpenAI's image generation: `size` "WIDTHxHEIGHT" (multiples of 8), `response_format` url or
    b64_json. Waits up to the longest wait (25 s) unless `Prefer` says otherwise; still running then,
    it answers 202 in the same shape with no images, the task's `status` and a Location to poll."""
    width, height = (int(side) for side in body.size.split("x"))
    for name, side in (("width", width), ("height", height)):
        try:
            spec.check_size("size", side, spec.IMAGE_SIZE)
        except ValidationFailed as e:
            raise spec.field_error("size", f"{name} {e.details[0]['message']}") from e
    params = {"prompt": body.prompt, "negative_prompt": body.negative_prompt, "width": width, "height": height,
              "num_inference_steps": body.steps, "guidance_scale": body.guidance_scale, "seed": body.seed}  # fmt: skip
    wait = wait_of(prefer)
    job = await media.generate(user.user_id, spec.TEXT_TO_IMAGE, params, model_id=body.model,
                               idempotency_key=key, wait_s=media.max_wait_s if wait is None else wait)  # fmt: skip
    view = await media.view(job)
    if view["status"] in ("failed", "cancelled"):
        raise DependencyFailed(f"The generation {view['status'].replace('cancelled', 'was cancelled')}: "
                               f"{view['error'] or 'no reason given'}", details={"task_id": view["task_id"]})  # fmt: skip
    if view["status"] != "completed":
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = f"/api/text-to-image/status/{view['task_id']}"
        return {"created": int(job["created_at"].timestamp()), "data": [], "task_id": view["task_id"],
                "seed": view["seed"], "model": view["model_id"], "status": view["status"]}  # fmt: skip
    image: dict[str, Any] = {"revised_prompt": body.prompt}
    if body.response_format == "b64_json":
        image["b64_json"] = base64.b64encode(await media.output_bytes(job)).decode()
    else:
        image["url"] = view["image_url"]
    return {"created": int(job["created_at"].timestamp()), "data": [image], "task_id": view["task_id"],
            "seed": view["seed"], "model": view["model_id"]}  # fmt: skip


def routers() -> list[APIRouter]:
    return [text_to_image, image_to_image, text_to_video, image_to_video, openai]
