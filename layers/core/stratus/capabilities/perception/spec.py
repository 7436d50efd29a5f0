"""Perception tasks' names, built-in models, limits and defaults, written once: the API's request checks
and the inference worker's validation both read them (this module imports nothing heavy)."""

from __future__ import annotations

from typing import Any

from stratus.errors import ValidationFailed
from stratus.schemas.options import FloatOption, IntOption

# Worker task names (the inference server's `task`).
CLASSIFY = "image-classification"
DETECT = "object-detection"
FACES = "face-analysis"  # detection, landmarks and 128-d embeddings in one pass
TRANSCRIBE = "transcription"
SYNTHESIZE = "speech-synthesis"
TASKS = (CLASSIFY, DETECT, FACES, TRANSCRIBE, SYNTHESIZE)

# The built-in models (stratus.ml.catalogue describes them).
CLASSIFIER = "efficientnet-lite0"
DETECTOR = "opencv/haar-cascades"
FACE_MODEL = "dlib/face-recognition-resnet"
WHISPER = "openai/whisper-tiny.en"
VOICE_MODEL = "piper/en_US-joe-medium"

# What the built-in detector finds: OpenCV's cascades, each named by the label it reports.
DETECTOR_CASCADES = {
    "face": "haarcascade_frontalface_default.xml",
    "eye": "haarcascade_eye.xml",
    "person": "haarcascade_fullbody.xml",
    "upper_body": "haarcascade_upperbody.xml",
    "cat_face": "haarcascade_frontalcatface.xml",
    "licence_plate": "haarcascade_russian_plate_number.xml",
}


# Images: the upload, and the decoded size (a small PNG can inflate to gigabytes of pixels).
MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000
TOP_K = IntOption(default=5, ge=1, le=20)
DETECT_THRESHOLD = FloatOption(default=0.5, ge=0.0, le=1.0)
# Camera frames are searched at this size on their longer side (boxes are given in the frame's own
# pixels): the cascades' cost grows with the pixels searched, and a face or body in a webcam frame is
# well above the smallest window (24 px) at 320 px. Uploaded images are searched at full size.
CAMERA_SEARCH_SIDE = 320
SEARCH_SIDE = IntOption(default=0, ge=0, le=8192)  # the worker's `max_side` option: 0 is full size
# A face smaller than this (pixels, shorter side) gives an embedding too poor to register.
MIN_FACE_PIXELS = 40
# dlib's embeddings: two photos of one person are usually closer than 0.6 (its authors' threshold).
FACE_MATCH_DISTANCE = FloatOption(default=0.6, ge=0.1, le=1.0)
MAX_FACES_PER_USER = 1_000
MAX_FACE_NAME_CHARS = 100

# Audio: the upload and its decoded length (CPU transcription runs at about 10x real time).
MAX_AUDIO_BYTES = 25 * 1024 * 1024
MAX_AUDIO_SECONDS = 600.0
TRANSCRIBE_FORMATS = ("json", "verbose_json", "text", "srt", "vtt")
LANGUAGES = ("en",)  # Whisper tiny.en is English-only

# Speech synthesis.
MAX_SPEECH_CHARS = 4_000
SPEED = FloatOption(default=1.0, ge=0.25, le=4.0)
AUDIO_FORMATS = ("wav", "mp3")
VOICES = {"default": VOICE_MODEL, "default-male": VOICE_MODEL, "joe": VOICE_MODEL}


def field_error(field: str, message: str, *, code: str = "VALIDATION_ERROR") -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", code=code, details=[{"field": field, "message": message}])


def voices() -> list[dict[str, Any]]:
    return [
        {"voice": name, "model": model, "language": "en-US", "gender": "male"}
        for name, model in VOICES.items()
    ]
