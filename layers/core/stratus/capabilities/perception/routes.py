"""Seed 002's recognition and audio routes (/api/image-recognition, /api/face-recognition, /api/audio) and
OpenAI's audio routes (/v1/audio/transcriptions, /v1/audio/speech). Media is read here (size and, for
images, type checked before anything reaches a worker) and answered by the inference worker."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, File, Form, Response, UploadFile, status
from fastapi.responses import JSONResponse, PlainTextResponse

from stratus.api.deps import Perception
from stratus.api.pagination import Pagination
from stratus.api.prefer import PreferHeader, wait_of
from stratus.api.routing import StratusRoute
from stratus.api.security import CurrentUser, RateLimit
from stratus.capabilities.perception import spec
from stratus.capabilities.perception.schemas import (
    ClassifyResponse,
    DetectResponse,
    FacePage,
    FacesResponse,
    RecognizeResponse,
    RegisterResponse,
    SpeechRequest,
    SynthesizeRequest,
    SynthesizeResponse,
    TranscriptionResponse,
    Voice,
    looks_like_image,
)
from stratus.capabilities.perception.spec import field_error, voices
from stratus.capabilities.perception.transcripts import render
from stratus.errors import PayloadTooLarge
from stratus.schemas.common import MessageResponse

ModelForm = Annotated[
    str | None, Form(min_length=1, max_length=200, description="Defaults to the built-in model")
]
Format = Literal["json", "verbose_json", "text", "srt", "vtt"]


async def read_media(upload: UploadFile, field: str, max_bytes: int) -> bytes:
    """The upload's bytes: empty or too large is refused naming the field."""
    data = await upload.read(max_bytes + 1)
    if not data:
        raise field_error(field, "the file is empty", code="EMPTY_FILE")
    if len(data) > max_bytes:
        limit = f"{max_bytes // (1024 * 1024)} MB"
        raise PayloadTooLarge(
            f"{field}: larger than {limit}", code="FILE_TOO_LARGE",
            details=[{"field": field, "message": f"larger than {limit}"}],
        )  # fmt: skip
    return data


async def read_image(upload: UploadFile) -> bytes:
    data = await read_media(upload, "image", spec.MAX_IMAGE_BYTES)
    if not looks_like_image(data[:16]):
        raise field_error("image", "not an image (send JPEG, PNG, BMP, WebP or TIFF)", code="NOT_AN_IMAGE")
    return data


images = APIRouter(
    prefix="/api/image-recognition", tags=["recognition"], route_class=StratusRoute, dependencies=[RateLimit]
)


@images.post("/classify", response_model=ClassifyResponse)
async def classify(
    image: Annotated[UploadFile, File()],
    user: CurrentUser,
    perception: Perception,
    model: ModelForm = None,
    top_k: Annotated[int, Form(ge=spec.TOP_K.ge, le=spec.TOP_K.le)] = spec.TOP_K.default,
) -> dict[str, Any]:
    """ImageNet labels, best first (EfficientNet-Lite0 by default); with `model` the id of one of your
    trained image classifiers, its own classes."""
    return await perception.classify(user.user_id, await read_image(image), model, top_k)


@images.post("/detect", response_model=DetectResponse)
async def detect(
    image: Annotated[UploadFile, File()],
    user: CurrentUser,
    perception: Perception,
    model: ModelForm = None,
    threshold: Annotated[
        float, Form(ge=spec.DETECT_THRESHOLD.ge, le=spec.DETECT_THRESHOLD.le)
    ] = spec.DETECT_THRESHOLD.default,
) -> dict[str, Any]:
    """Objects with `bbox` = [x, y, width, height] in pixels from the top-left corner. The built-in
    detector (OpenCV's cascades) finds only the `labels` it lists."""
    return await perception.detect(user.user_id, await read_image(image), model, threshold)


faces = APIRouter(
    prefix="/api/face-recognition", tags=["recognition"], route_class=StratusRoute, dependencies=[RateLimit]
)


@faces.post("/detect", response_model=FacesResponse)
async def detect_faces(
    image: Annotated[UploadFile, File()], user: CurrentUser, perception: Perception
) -> dict[str, Any]:
    """Faces with boxes and eye landmarks; an image without a face answers an empty list."""
    return await perception.detect_faces(user.user_id, await read_image(image))


@faces.post("/register", response_model=RegisterResponse, status_code=status.HTTP_201_CREATED)
async def register_face(
    image: Annotated[UploadFile, File()],
    name: Annotated[str, Form(min_length=1, max_length=spec.MAX_FACE_NAME_CHARS)],
    user: CurrentUser,
    perception: Perception,
) -> dict[str, Any]:
    """Register the one face in the photo under `name`: its embedding is kept, the photo is not.
    Refused (422, naming `image`) when there is no face, several faces, or a face too small."""
    if not name.strip():
        raise field_error("name", "must not be empty")
    return await perception.register_face(user.user_id, await read_image(image), name.strip())


@faces.post("/recognize", response_model=RecognizeResponse)
async def recognize_faces(
    image: Annotated[UploadFile, File()],
    user: CurrentUser,
    perception: Perception,
    max_distance: Annotated[
        float, Form(ge=spec.FACE_MATCH_DISTANCE.ge, le=spec.FACE_MATCH_DISTANCE.le)
    ] = spec.FACE_MATCH_DISTANCE.default,
) -> dict[str, Any]:
    """Each face in the photo, named when it matches one of YOUR registered faces (never another
    user's); unmatched faces have `face_id` and `name` null."""
    return await perception.recognize(user.user_id, await read_image(image), max_distance)


@faces.get("/faces", response_model=FacePage)
async def list_faces(user: CurrentUser, perception: Perception, page: Pagination) -> dict[str, Any]:
    return await perception.list_faces(user.user_id, limit=page.limit, offset=page.offset)


@faces.delete("/faces/{face_id}", response_model=MessageResponse)
async def delete_face(face_id: str, user: CurrentUser, perception: Perception) -> MessageResponse:
    await perception.delete_face(user.user_id, face_id)
    return MessageResponse(message="Face deleted")


audio = APIRouter(prefix="/api/audio", tags=["audio"], route_class=StratusRoute, dependencies=[RateLimit])


def _transcript_response(record: dict[str, Any], response_format: str, *, openai: bool = False) -> Response:
    if record["status"] == "pending":
        return JSONResponse(
            {"task_id": str(record["_id"]), "status": "pending"},
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/api/tasks/{record['_id']}"},
        )
    body, media_type = render(str(record["_id"]), record["result"], response_format, openai=openai)
    if isinstance(body, str):
        return PlainTextResponse(body, media_type=media_type)
    return JSONResponse(body)


@audio.post("/transcribe", response_model=TranscriptionResponse)
async def transcribe(
    audio_file: Annotated[UploadFile, File(alias="audio")],
    user: CurrentUser,
    perception: Perception,
    language: Annotated[str | None, Form(max_length=10)] = None,
    model: ModelForm = None,
    response_format: Annotated[Format, Form()] = "json",
    prompt: Annotated[str | None, Form(max_length=1000)] = None,
    vad_filter: Annotated[bool, Form()] = True,
    prefer: PreferHeader = None,
) -> Response:
    """Speech to text (Whisper tiny.en). `response_format` json (seed 002's shape), verbose_json,
    text, srt or vtt. Long audio answers 202 with a task id (GET /api/tasks/{id})."""
    data = await read_media(audio_file, "audio", spec.MAX_AUDIO_BYTES)
    options = {"language": language, "vad_filter": vad_filter, "prompt": prompt}
    record = await perception.transcribe(user.user_id, data, model, options, wait_s=wait_of(prefer))
    return _transcript_response(record, response_format)


@audio.post("/synthesize", response_model=SynthesizeResponse)
async def synthesize(body: SynthesizeRequest, user: CurrentUser, perception: Perception) -> dict[str, Any]:
    """Speech for `text` as WAV (or MP3), stored; `audio_url` is a short-lived link to it."""
    return await perception.synthesize(user.user_id, body.text, body.voice, body.speed, body.format)


@audio.get("/voices", response_model=list[Voice])
async def list_voices(user: CurrentUser) -> list[dict[str, Any]]:
    return voices()


openai = APIRouter(prefix="/v1/audio", tags=["openai"], route_class=StratusRoute, dependencies=[RateLimit])


@openai.post("/transcriptions")
async def openai_transcriptions(
    file: Annotated[UploadFile, File()],
    model: Annotated[str, Form(min_length=1, max_length=200)],
    user: CurrentUser,
    perception: Perception,
    language: Annotated[str | None, Form(max_length=10)] = None,
    prompt: Annotated[str | None, Form(max_length=1000)] = None,
    response_format: Annotated[Format, Form()] = "json",
    temperature: Annotated[float, Form(ge=0, le=1)] = 0.0,
) -> Response:
    """OpenAI-compatible transcription (`model` whisper-1 is the built-in Whisper)."""
    data = await read_media(file, "file", spec.MAX_AUDIO_BYTES)
    options = {"language": language, "prompt": prompt, "temperature": temperature}
    record = await perception.transcribe(user.user_id, data, model, options, wait_s=float("inf"))
    return _transcript_response(record, response_format, openai=True)


@openai.post("/speech", response_class=Response)
async def openai_speech(body: SpeechRequest, user: CurrentUser, perception: Perception) -> Response:
    """OpenAI-compatible speech: the audio bytes (mp3 by default, or wav)."""
    data, content_type = await perception.speech_bytes(
        user.user_id, body.input, body.voice, body.speed, body.response_format
    )
    return Response(data, media_type=content_type)


def routers() -> list[APIRouter]:
    """What this capability mounts, in order. The camera socket is not among them: API Gateway's HTTP API
    carries no WebSocket, so only the local runtime mounts `camera.router` (stratus.local.runtime)."""
    return [images, faces, audio, openai]
