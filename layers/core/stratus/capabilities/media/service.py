"""Media generation on the job pipeline: validate, record, queue; answer inline within `Prefer: wait=N`
or 202 with the task id; read back with freshly signed URLs.

The API runs no model: it checks the request against spec.py's limits (an uploaded image by its header,
so a decompression bomb is refused before anything is stored), resolves the model (a built-in tiny
pipeline or the caller's downloaded diffusers repository), picks a seed when none is given (recorded, so
the output can be reproduced), stores the source image under the caller's prefix, and creates a job of
the mode's kind. The worker (stratus_worker.generation) does the rest.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from datetime import timedelta
from typing import Any

from bson import ObjectId

from stratus.capabilities.media import spec
from stratus.capabilities.media.imageinfo import image_size
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import NotFound, PayloadTooLarge, ValidationFailed
from stratus.jobs.lifecycle import is_terminal
from stratus.jobs.service import JobService
from stratus.ports.storage import ObjectStorage
from stratus.schemas.common import iso_utc, utcnow
from stratus.schemas.options import IntOption
from stratus.services.quota import QuotaService

POLL_S = 0.05  # how often an inline request looks at its job while it waits
_PUBLIC_STATUS = {
    "queued": "pending",
    "starting": "processing",
    "running": "processing",
    "stopping": "processing",
    "completed": "completed",
    "failed": "failed",
    "stopped": "cancelled",
}


def check_image(data: bytes, field: str = "image") -> tuple[str, int, int]:
    """An uploaded source image: not empty, not too large, an image by its header, not too many pixels."""
    if not data:
        raise spec.field_error(field, "the file is empty", code="EMPTY_FILE")
    if len(data) > spec.MAX_IMAGE_BYTES:
        limit = f"{spec.MAX_IMAGE_BYTES // (1024 * 1024)} MB"
        raise PayloadTooLarge(f"{field}: larger than {limit}", code="FILE_TOO_LARGE",
                              details=[{"field": field, "message": f"larger than {limit}"}])  # fmt: skip
    info = image_size(data)
    if info is None:
        raise spec.field_error(field, "not an image (send PNG, JPEG, WebP, GIF or BMP)", code="NOT_AN_IMAGE")
    fmt, width, height = info
    if width < 1 or height < 1:
        raise spec.field_error(field, "the image has no pixels", code="NOT_AN_IMAGE")
    if width * height > spec.MAX_IMAGE_PIXELS:
        raise spec.field_error(
            field, f"{width}x{height} is more than {spec.MAX_IMAGE_PIXELS} pixels (a decompression bomb?)",
            code="IMAGE_TOO_LARGE",
        )  # fmt: skip
    return fmt, width, height


def fit_size(width: int, height: int, longest: int, option: IntOption) -> tuple[int, int]:
    """A source image's size scaled so its longer side is `longest`, rounded down to multiples of 8."""
    scale = longest / max(width, height)
    fit = [max(option.ge, min(option.le, int(side * scale) // spec.SIZE_MULTIPLE * spec.SIZE_MULTIPLE))
           for side in (width, height)]  # fmt: skip
    return fit[0], fit[1]


class MediaService:
    def __init__(
        self,
        jobs: JobService,
        job_repo: JobRepository,
        models: ModelRepository,
        storage: ObjectStorage,
        quota: QuotaService,
        *,
        url_ttl_s: int,
        default_wait_s: float,
        max_wait_s: float,
    ) -> None:
        self._jobs = jobs
        self._job_repo = job_repo
        self._models = models
        self._storage = storage
        self._quota = quota
        self.url_ttl_s = url_ttl_s
        self.default_wait_s = default_wait_s
        self.max_wait_s = max_wait_s

    # --- models ---------------------------------------------------------------------------------

    async def list_models(self, user_id: ObjectId, modes: tuple[str, ...]) -> list[dict[str, Any]]:
        """The built-in test pipelines and the caller's downloaded diffusers repositories for `modes`."""
        listed = [
            {"id": name, "name": info["name"], "description": info["description"],
             "modes": list(info["modes"]), "source": "builtin"}
            for name, info in spec.BUILTIN_MODELS.items() if set(modes) & set(info["modes"])
        ]  # fmt: skip
        for record in await self._downloaded(user_id):
            pipeline = (record.get("architecture") or {}).get("class")
            can = spec.modes_of_pipeline(pipeline)
            if set(modes) & set(can):
                listed.append({"id": record["name"], "name": record["name"],
                               "description": f"Downloaded diffusers repository ({pipeline})",
                               "modes": list(can), "source": "hub"})  # fmt: skip
        return listed

    async def _downloaded(self, user_id: ObjectId) -> list[dict[str, Any]]:
        pipelines = list(spec.IMAGE_PIPELINES + spec.VIDEO_PIPELINES)
        records, _ = await self._models.list_owned(
            user_id,
            filters={"source": "hub", "status": "ready", "architecture.class": {"$in": pipelines}},
            limit=200,
            offset=0,
        )
        return records

    async def resolve_model(self, user_id: ObjectId, mode: str, model_id: str | None) -> dict[str, Any]:
        """The worker's `model` param: a built-in pipeline, or the caller's downloaded diffusers repository
        (404 listing the available ones; 422 when it does another mode)."""
        name = model_id or spec.DEFAULT_MODEL[mode]
        builtin = {k.lower(): k for k in spec.BUILTIN_MODELS}.get(name.lower())
        if builtin is not None:
            if mode not in spec.BUILTIN_MODELS[builtin]["modes"]:
                raise _wrong_mode(builtin, mode, spec.BUILTIN_MODELS[builtin]["modes"])
            return {"name": builtin, "builtin": True}
        record = await self._models.find_named(user_id, name, source="hub")
        pipeline = ((record or {}).get("architecture") or {}).get("class")
        if record is None or record.get("status") != "ready" or not spec.modes_of_pipeline(pipeline):
            available = [m["id"] for m in await self.list_models(user_id, (mode,))]
            raise NotFound(
                f"Model '{name}' is not available for {mode}; available: {', '.join(available)}",
                code="MODEL_NOT_FOUND",
                details={"available": available,
                         "hint": "POST /models/download fetches a diffusers repository from the hub"},
            )  # fmt: skip
        if mode not in spec.modes_of_pipeline(pipeline):
            raise _wrong_mode(record["name"], mode, spec.modes_of_pipeline(pipeline))
        return {
            "name": record["name"],
            "builtin": False,
            "source": {
                "snapshot": (record.get("artifacts") or {}).get("snapshot"),
                "files": list(record.get("files") or []),
                "revision": record.get("revision"),
            },
        }

    # --- generating -----------------------------------------------------------------------------

    async def generate(
        self,
        user_id: ObjectId,
        mode: str,
        params: dict[str, Any],
        *,
        model_id: str | None,
        image: bytes | None = None,
        idempotency_key: str | None = None,
        wait_s: float | None = None,
    ) -> dict[str, Any]:
        """Validate, queue and (within the wait) finish one generation; the job as it is then."""
        params = {k: v for k, v in params.items() if v is not None or k == "negative_prompt"}
        model = await self.resolve_model(user_id, mode, model_id)
        image_key = None
        if mode in (spec.IMAGE_TO_IMAGE, spec.IMAGE_TO_VIDEO):
            if image is None:
                raise spec.field_error("image", "required")
            fmt, width, height = check_image(image)
            size = spec.VIDEO_SIZE if mode in spec.VIDEO_MODES else spec.IMAGE_SIZE
            if not params.get("width") or not params.get("height"):
                params["width"], params["height"] = fit_size(width, height, size.default, size)
            digest = hashlib.sha256(image).hexdigest()
            image_key = f"users/{user_id}/media/inputs/{digest}.{fmt}"
        if params.get("seed") is None:
            params["seed"] = secrets.randbelow(spec.MAX_SEED + 1)
        params["mode"] = mode
        spec.check_params(mode, params)  # the schema checked each field; this checks them together
        await self._quota.consume_query(user_id)
        if image is not None and image_key is not None:
            await self._storage.put_bytes(image_key, image, content_type=f"image/{fmt}")
            params["image_key"] = image_key
        steps = int(params["num_inference_steps"])
        if mode in (spec.IMAGE_TO_IMAGE, spec.IMAGE_TO_VIDEO):
            steps = int(steps * float(params["strength"]))
        doc: dict[str, Any] = {
            "user_id": user_id,
            "kind": spec.MODES[mode],
            "mode": mode,
            "model_name": model["name"],
            "params": {**params, "model": model},
            "progress": 0.0,
            "current_step": 0,
            "total_steps": steps,
            "metrics": {},
        }
        job, _ = await self._jobs.create(doc, idempotency_key=idempotency_key)
        return await self.wait(job, self.default_wait_s if wait_s is None else wait_s)

    async def wait(self, job: dict[str, Any], wait_s: float) -> dict[str, Any]:
        """The job once it has finished, or as it is when `wait_s` (at most max_wait_s) has passed."""
        deadline = asyncio.get_running_loop().time() + min(max(wait_s, 0.0), self.max_wait_s)
        while not is_terminal(job["status"]) and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(POLL_S)
            job = await self._job_repo.get(job["_id"]) or job
        return job

    # --- reading --------------------------------------------------------------------------------

    async def get(self, user_id: ObjectId, task_id: ObjectId, modes: tuple[str, ...]) -> dict[str, Any]:
        job = await self._job_repo.get_owned(user_id, task_id)
        if job is None or job.get("kind") not in spec.KIND_NAMES or job.get("mode") not in modes:
            raise NotFound("Task not found")
        return job

    async def view(self, job: dict[str, Any]) -> dict[str, Any]:
        """Seed 002's status body, every URL signed afresh (expires_at says until when)."""
        params = dict(job.get("params") or {})
        mode = str(job.get("mode") or params.get("mode"))
        artifacts = job.get("artifacts") or {}
        metrics = job.get("final_metrics") or {}
        live = job.get("metrics") or {}
        ttl = self.url_ttl_s
        expires_at = iso_utc(utcnow() + timedelta(seconds=ttl))
        body: dict[str, Any] = {
            "task_id": str(job["_id"]),
            "status": _PUBLIC_STATUS.get(job["status"], job["status"]),
            "job_status": job["status"],
            "mode": mode,
            "progress": int(min(max(float(job.get("progress") or 0.0), 0.0), 100.0)),
            "image_url": None,
            "video_url": None,
            "expires_at": None,
            "step": int(job.get("current_step") or 0),
            "total": int(job.get("total_steps") or 0),
            "eta_s": live.get("eta_s") if job["status"] in ("starting", "running") else None,
            "preview_step": live.get("preview_step"),
            "model_id": job.get("model_name"),
            "seed": params.get("seed"),
            "params": {k: v for k, v in params.items() if k not in ("model", "mode", "image_key")},
            "durations": metrics.get("durations"),
            "width": metrics.get("width"),
            "height": metrics.get("height"),
            "frames": metrics.get("frames"),
            "error": job.get("error"),
            "created_at": iso_utc(job["created_at"]) if job.get("created_at") else None,
            "completed_at": iso_utc(job["completed_at"]) if job.get("completed_at") else None,
        }
        output = artifacts.get("video") or artifacts.get("image")
        if output and job["status"] == "completed":
            name = output.rsplit("/", 1)[-1]
            url = await self._storage.presign_get(output, expires_in=ttl, filename=f"{job['_id']}-{name}")
            body["video_url" if artifacts.get("video") else "image_url"] = url
            body["expires_at"] = expires_at
        preview_key = artifacts.get("preview") or (
            f"users/{job['user_id']}/jobs/{job['_id']}/preview.png" if live.get("preview_step") else None
        )
        if preview_key:
            body["preview_url"] = await self._storage.presign_get(preview_key, expires_in=ttl)
            body["expires_at"] = body["expires_at"] or expires_at
        return body

    async def output_bytes(self, job: dict[str, Any]) -> bytes:
        """The finished image's bytes (OpenAI's b64_json)."""
        key = (job.get("artifacts") or {}).get("image")
        if not key:
            raise NotFound("The generation has no image")
        return await self._storage.get_bytes(key)


def _wrong_mode(name: str, mode: str, modes: Any) -> ValidationFailed:
    return ValidationFailed(
        f"Model '{name}' does not do {mode}; it does: {', '.join(modes)}",
        code="WRONG_TASK",
        details=[{"field": "model_id", "message": f"does not do {mode}"}],
    )
