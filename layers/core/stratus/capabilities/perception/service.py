"""Recognition and audio on the inference workers: the API validates, sends media to the worker as
base64 through the InferenceBackend port, and keeps only what the user asked to keep (registered
faces' embeddings, synthesized audio in object storage). Nothing here imports a model library.

Face matching happens here, over the user's own embeddings only, so another user's faces can never
match. Euclidean distance on dlib's embeddings: a match is within `max_distance` (0.6 by default) and
its confidence is 1 - distance.
"""

from __future__ import annotations

import asyncio
import base64
import math
from typing import Any, Protocol

from bson import ObjectId

from stratus.capabilities.nlp.service import TaskService, resolve_model
from stratus.capabilities.perception import spec
from stratus.capabilities.perception.schemas import looks_like_image
from stratus.capabilities.perception.spec import field_error
from stratus.db.repositories.faces import FaceRepository
from stratus.db.repositories.tasks import TaskRepository
from stratus.errors import NotFound, ServiceUnavailable, ValidationFailed
from stratus.ports.inference import InferenceBackend, InferencePending, InferenceRequest
from stratus.ports.storage import ObjectStorage
from stratus.schemas.common import utcnow
from stratus.services.quota import QuotaService


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _distance(a: list[float], b: list[float]) -> float:
    return math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))


class TrainedImageModels(Protocol):
    async def predict_images(
        self, user_id: ObjectId, model_id: ObjectId, images: list[bytes]
    ) -> list[dict[str, Any]]: ...


class PerceptionService:
    def __init__(
        self,
        backend: InferenceBackend,
        faces: FaceRepository,
        storage: ObjectStorage,
        tasks: TaskService,
        task_records: TaskRepository,
        quota: QuotaService,
        *,
        wait_s: float,
        url_ttl_s: int = 3600,
        trained_models: TrainedImageModels | None = None,
    ) -> None:
        self._backend = backend
        self._trained = trained_models
        self._faces = faces
        self._storage = storage
        self._tasks = tasks
        self._records = task_records
        self._quota = quota
        self._wait_s = wait_s
        self._url_ttl_s = url_ttl_s

    async def _invoke(
        self,
        user_id: ObjectId,
        task: str,
        model_name: str | None,
        item: dict[str, Any],
        options: dict[str, Any],
        *,
        metered: bool = True,
        source: dict[str, Any] | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """One item through the worker, answered inline: images and short speech take well under the
        wait, so one that does not is a worker still starting (503, retry), not a task to follow.
        `metered`: counts one query against the user's quota (a camera frame counts once for its
        two calls)."""
        model = model_name if source is not None and model_name else resolve_model(task, model_name)
        if metered:
            await self._quota.consume_query(user_id)
        request = InferenceRequest(task=task, model=model, inputs=[item], options=options, source=source)
        try:
            result = await self._backend.invoke(request, wait_s=self._wait_s)
        except InferencePending as e:
            raise ServiceUnavailable(
                "The inference worker is still starting; try again shortly", code="INFERENCE_WARMING_UP"
            ) from e
        return result.model, result.outputs[0]

    # ------------------------------------------------------------------------------------------ images

    async def classify(
        self, user_id: ObjectId, image: bytes, model: str | None, top_k: int
    ) -> dict[str, Any]:
        if model and ObjectId.is_valid(model) and self._trained is not None:
            # One of the user's trained image classifiers, by id (issue 19): its own labels.
            [prediction] = await self._trained.predict_images(user_id, ObjectId(model), [image])
            ranked = prediction["top"] or [prediction]
            return {
                "classifications": [
                    {"label": p["class"], "confidence": p["confidence"]} for p in ranked[:top_k]
                ],
                "model": model,
            }
        name, out = await self._invoke(
            user_id, spec.CLASSIFY, model, {"image": _b64(image)}, {"top_k": top_k}
        )
        return {"classifications": out["classifications"], "model": name}

    async def detect(
        self, user_id: ObjectId, image: bytes, model: str | None, threshold: float
    ) -> dict[str, Any]:
        # A detector the user downloaded (DETR, YOLOS, ...) is found like the NLP tasks' models.
        resolved, source = await self._tasks.resolve(user_id, spec.DETECT, model)
        name, out = await self._invoke(
            user_id, spec.DETECT, resolved, {"image": _b64(image)}, {"threshold": threshold}, source=source
        )
        return {"detections": out["detections"], "model": name, "labels": out.get("labels", [])}

    async def _faces_in(
        self, user_id: ObjectId, image: bytes, *, metered: bool = True
    ) -> list[dict[str, Any]]:
        _, out = await self._invoke(user_id, spec.FACES, None, {"image": _b64(image)}, {}, metered=metered)
        return list(out["faces"])

    async def detect_faces(self, user_id: ObjectId, image: bytes) -> dict[str, Any]:
        faces = await self._faces_in(user_id, image)
        return {
            "faces": [
                {"face_id": f"face_{i + 1:03d}", "confidence": f["confidence"], "bbox": f["bbox"],
                 "landmarks": f["landmarks"]}
                for i, f in enumerate(faces)
            ]
        }  # fmt: skip

    async def register_face(self, user_id: ObjectId, image: bytes, name: str) -> dict[str, Any]:
        """Store the embedding of the one face in `image` (the photo itself is not kept)."""
        if await self._faces.count_owned(user_id) >= spec.MAX_FACES_PER_USER:
            raise ValidationFailed(
                f"At most {spec.MAX_FACES_PER_USER} registered faces per user; delete some first",
                code="TOO_MANY_FACES",
            )
        faces = await self._faces_in(user_id, image)
        if not faces:
            raise field_error("image", "no face found", code="NO_FACE")
        if len(faces) > 1:
            raise field_error(
                "image", f"{len(faces)} faces found; send a photo of one face", code="SEVERAL_FACES"
            )
        face = faces[0]
        if min(face["bbox"][2], face["bbox"][3]) < spec.MIN_FACE_PIXELS:
            raise field_error(
                "image",
                f"the face is smaller than {spec.MIN_FACE_PIXELS} pixels across",
                code="FACE_TOO_SMALL",
            )
        doc = await self._faces.insert(
            {"user_id": user_id, "name": name, "embedding": face["embedding"], "model": spec.FACE_MODEL}
        )
        return {"success": True, "face_id": f"face_{doc['_id']}", "name": name, "bbox": face["bbox"]}

    async def camera_frame(self, user_id: ObjectId, image: bytes) -> dict[str, Any]:
        """One camera frame: the user's faces recognized, and the detector's objects (one query)."""
        if not looks_like_image(image[:16]):
            raise field_error(
                "image", "not an image (send JPEG, PNG, BMP, WebP or TIFF)", code="NOT_AN_IMAGE"
            )
        await self._quota.consume_query(user_id)
        known = await self._faces.embeddings(user_id, limit=spec.MAX_FACES_PER_USER)
        search = spec.CAMERA_SEARCH_SIDE
        # Two models, two worker threads: asked together, they run side by side.
        (_, found), (_, out) = await asyncio.gather(
            self._invoke(user_id, spec.FACES, None, {"image": _b64(image)},
                         {"max_side": search, "embeddings": bool(known)}, metered=False),
            self._invoke(user_id, spec.DETECT, None, {"image": _b64(image)},
                         {"threshold": spec.DETECT_THRESHOLD.default, "max_side": search}, metered=False),
        )  # fmt: skip
        faces = _matched(found["faces"], known, spec.FACE_MATCH_DISTANCE.default)
        return {"faces": faces, "detections": out["detections"]}

    async def recognize(
        self, user_id: ObjectId, image: bytes, max_distance: float, *, metered: bool = True
    ) -> dict[str, Any]:
        faces = await self._faces_in(user_id, image, metered=metered)
        known = await self._faces.embeddings(user_id, limit=spec.MAX_FACES_PER_USER) if faces else []
        return {"faces": _matched(faces, known, max_distance)}

    async def list_faces(self, user_id: ObjectId, *, limit: int, offset: int) -> dict[str, Any]:
        docs, total = await self._faces.list_owned(user_id, limit=limit, offset=offset)
        faces = [
            {"face_id": f"face_{d['_id']}", "name": d["name"], "created_at": d["created_at"]} for d in docs
        ]
        return {"faces": faces, "total": total, "limit": limit, "offset": offset}

    async def delete_face(self, user_id: ObjectId, face_id: str) -> None:
        raw = face_id.removeprefix("face_")
        if not ObjectId.is_valid(raw) or not await self._faces.delete_owned(user_id, ObjectId(raw)):
            raise NotFound("Face not found")

    # ------------------------------------------------------------------------------------------- audio

    async def transcribe(
        self,
        user_id: ObjectId,
        audio: bytes,
        model: str | None,
        options: dict[str, Any],
        *,
        wait_s: float | None,
    ) -> dict[str, Any]:
        """A task record: completed with the transcript inline, or pending (follow GET /api/tasks/{id})."""
        return await self._tasks.run(
            user_id, spec.TRANSCRIBE, model, [{"audio": _b64(audio)}], options, wait_s=wait_s
        )

    async def synthesize(
        self, user_id: ObjectId, text: str, voice: str, speed: float, audio_format: str
    ) -> dict[str, Any]:
        """Speech for `text`, stored in object storage; the task record keeps its key, not the audio."""
        model = spec.VOICES.get(voice)
        if model is None:
            raise field_error(
                "voice", f"unknown voice; available: {', '.join(spec.VOICES)}", code="UNKNOWN_VOICE"
            )
        name, out = await self._invoke(
            user_id, spec.SYNTHESIZE, model, {"text": text}, {"speed": speed, "format": audio_format}
        )
        task_id = ObjectId()
        key = f"users/{user_id}/audio/{task_id}.{out['format']}"
        await self._storage.put_bytes(key, base64.b64decode(out["audio"]), content_type=out["content_type"])
        result = {"audio_key": key, "duration": out["duration"], "format": out["format"],
                  "content_type": out["content_type"], "sample_rate": out["sample_rate"], "voice": voice}  # fmt: skip
        await self._records.insert(
            {"_id": task_id, "user_id": user_id, "task": spec.SYNTHESIZE, "model": name, "status": "completed",
             "options": {"speed": speed, "format": audio_format}, "result": result, "completed_at": utcnow()}
        )  # fmt: skip
        url = await self._storage.presign_get(
            key, expires_in=self._url_ttl_s, filename=f"speech.{out['format']}"
        )
        return {"task_id": str(task_id), "status": "completed", "audio_url": url, **result}

    async def speech_bytes(
        self, user_id: ObjectId, text: str, voice: str, speed: float, audio_format: str
    ) -> tuple[bytes, str]:
        """OpenAI's /v1/audio/speech answers the audio itself; nothing is stored."""
        model = spec.VOICES.get(voice, spec.VOICE_MODEL)
        _, out = await self._invoke(
            user_id, spec.SYNTHESIZE, model, {"text": text}, {"speed": speed, "format": audio_format}
        )
        return base64.b64decode(out["audio"]), str(out["content_type"])


def _matched(
    faces: list[dict[str, Any]], known: list[dict[str, Any]], max_distance: float
) -> list[dict[str, Any]]:
    """Each face found, named by the nearest of the user's registered faces within `max_distance`."""
    answered = []
    for face in faces:
        best = min(known, key=lambda k: _distance(face["embedding"], k["embedding"]), default=None)
        distance = _distance(face["embedding"], best["embedding"]) if best is not None else math.inf
        if best is not None and distance <= max_distance:
            answered.append({"face_id": f"face_{best['_id']}", "name": best["name"],
                             "confidence": round(1.0 - distance, 4), "distance": round(distance, 4),
                             "bbox": face["bbox"]})  # fmt: skip
        else:
            answered.append({"face_id": None, "name": None, "confidence": 0.0, "distance": None,
                             "bbox": face["bbox"]})  # fmt: skip
    return answered
