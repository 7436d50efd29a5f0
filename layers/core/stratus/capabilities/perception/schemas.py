"""Seed 002's recognition and audio shapes, and OpenAI's audio requests."""

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from stratus.capabilities.perception import spec
from stratus.schemas.base import Schema

# The image formats the worker decodes, by their first bytes: refused in the API before any upload to
# a worker. Audio is not sniffed here (too many containers): the worker refuses what it cannot decode.
IMAGE_SIGNATURES: tuple[tuple[bytes, int], ...] = (
    (b"\xff\xd8\xff", 0),  # JPEG
    (b"\x89PNG\r\n\x1a\n", 0),
    (b"BM", 0),
    (b"WEBP", 8),  # RIFF....WEBP
    (b"II*\x00", 0),  # TIFF
    (b"MM\x00*", 0),
)


def looks_like_image(head: bytes) -> bool:
    return any(head[offset : offset + len(sig)] == sig for sig, offset in IMAGE_SIGNATURES)


class Classification(Schema):
    label: str
    confidence: float
    class_id: int | None = None


class ClassifyResponse(Schema):
    classifications: list[Classification]
    model: str


class Detection(Schema):
    label: str
    confidence: float
    bbox: list[int] = Field(description="[x, y, width, height] in pixels from the image's top-left corner")


class DetectResponse(Schema):
    detections: list[Detection]
    model: str
    labels: list[str] = Field(description="Everything this detector can find")


class Face(Schema):
    face_id: str
    confidence: float
    bbox: list[int]
    landmarks: dict[str, list[int]] = Field(
        description="Eyes as seen in the image (left_eye has the smaller x)"
    )


class FacesResponse(Schema):
    faces: list[Face]


class RegisterResponse(Schema):
    success: bool
    face_id: str
    name: str
    bbox: list[int]


class RecognizedFace(Schema):
    face_id: str | None = Field(description="null when the face matches none of your registered faces")
    name: str | None
    confidence: float
    distance: float | None
    bbox: list[int]


class RecognizeResponse(Schema):
    faces: list[RecognizedFace]


class RegisteredFace(Schema):
    face_id: str
    name: str
    created_at: Any


class FacePage(Schema):
    faces: list[RegisteredFace]
    total: int
    limit: int
    offset: int


class Segment(Schema):
    id: int
    start: float
    end: float
    text: str


class TranscriptionResponse(Schema):
    task_id: str
    status: str
    text: str | None = None
    language: str | None = None
    duration: float | None = None
    segments: list[Segment] | None = None


class SynthesizeRequest(Schema):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=spec.MAX_SPEECH_CHARS)
    voice: str = Field(default="default", max_length=100)
    language: Literal["en"] = "en"
    speed: float = Field(default=spec.SPEED.default, ge=spec.SPEED.ge, le=spec.SPEED.le)
    pitch: float = Field(default=0, description="Only 0: the voice has no pitch control")
    format: Literal["wav", "mp3"] = "wav"

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @field_validator("pitch")
    @classmethod
    def _no_pitch(cls, value: float) -> float:
        if value != 0:
            raise ValueError("pitch shifting is not supported by the available voice; send 0")
        return value


class SynthesizeResponse(Schema):
    task_id: str
    status: str
    audio_url: str
    audio_key: str = Field(description="Where the audio is in object storage")
    duration: float
    format: str
    content_type: str
    sample_rate: int
    voice: str


class Voice(Schema):
    voice: str
    model: str
    language: str
    gender: str


class SpeechRequest(Schema):
    """OpenAI's POST /v1/audio/speech. Every OpenAI voice name is accepted and spoken by the one voice
    installed (en_US-joe); `model` tts-1 and tts-1-hd are that voice too."""

    model: str = Field(min_length=1, max_length=100)
    input: str = Field(min_length=1, max_length=spec.MAX_SPEECH_CHARS)
    voice: str = Field(min_length=1, max_length=100)
    response_format: Literal["wav", "mp3"] = "mp3"
    speed: float = Field(default=spec.SPEED.default, ge=spec.SPEED.ge, le=spec.SPEED.le)
    instructions: str | None = Field(default=None, max_length=4096)
