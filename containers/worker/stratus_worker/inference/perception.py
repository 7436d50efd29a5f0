"""Perception tasks (seed 002): validation (cheap, no model needed), model loading and runs.

Inputs carry media as base64 (`image`, `audio`) so one JSON body serves both the local server and
SageMaker's asynchronous endpoint (whose input goes through S3). Limits are the API's, from
stratus.capabilities.perception.spec. Errors that concern an input name its field first.

- image-classification: {image} -> {classifications: [{label, confidence, class_id}]}; option `top_k`.
- object-detection: {image} -> {detections: [{label, confidence, bbox}]}; options `threshold`,
  `max_side` (search a copy scaled down to this longer side; 0, the default: full size).
- face-analysis: {image} -> {width, height, faces: [{confidence, bbox, landmarks, embedding}]};
  options `max_side` (as above: where faces are searched; landmarks and embeddings always read the
  full image) and `embeddings` (false: null, for a caller with nothing to match them against).
- transcription: {audio} -> {text, language, duration, segments: [{id, start, end, text, ...}]};
  options `language`, `vad_filter` (default on), `prompt`, `temperature`.
- speech-synthesis: {text} -> {audio (base64), format, content_type, duration, sample_rate};
  options `speed`, `format` (wav, mp3).

Boxes are [x, y, width, height] in pixels of the image as sent, x and y from its top-left corner.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from stratus.capabilities.perception import spec
from stratus.schemas.options import FloatOption
from stratus_worker.inference.errors import InvalidInput

Item = dict[str, Any]

TASKS = spec.TASKS
LOADERS = (
    "efficientnet-lite",
    "haar-cascades",
    "dlib-faces",
    "faster-whisper",
    "piper",
    "hub-object-detector",
)


def _float(value: Any, where: str, limit: FloatOption) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInput(f"{where} must be a number")
    if not limit.ge <= value <= limit.le:
        raise InvalidInput(f"{where} must be between {limit.ge} and {limit.le}")
    return float(value)


def _media(item: Mapping[str, Any], key: str, where: str, max_bytes: int) -> bytes:
    value = item.get(key)
    if isinstance(value, bytes) and value:  # validated already (the engine checks again before a run)
        return value
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"{key}: {where}.{key} must be a non-empty base64 string")
    if len(value) > (max_bytes * 4) // 3 + 4:
        raise InvalidInput(f"{key}: larger than {max_bytes // (1024 * 1024)} MB")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as e:
        raise InvalidInput(f"{key}: {where}.{key} is not valid base64") from e
    if not data:
        raise InvalidInput(f"{key}: the file is empty")
    return data


def _options(task: str, options: Mapping[str, Any]) -> Item:
    defaults: dict[str, dict[str, Any]] = {
        spec.CLASSIFY: {"top_k": spec.TOP_K.default},
        spec.DETECT: {"threshold": spec.DETECT_THRESHOLD.default, "max_side": spec.SEARCH_SIDE.default},
        spec.FACES: {"max_side": spec.SEARCH_SIDE.default, "embeddings": True},
        spec.TRANSCRIBE: {"language": None, "vad_filter": True, "prompt": None, "temperature": 0.0},
        spec.SYNTHESIZE: {"speed": spec.SPEED.default, "format": "wav"},
    }
    allowed = defaults[task]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise InvalidInput(
            f"Unknown option(s) for {task}: {', '.join(unknown)} (allowed: {', '.join(allowed)})"
        )
    clean = {**allowed, **{k: v for k, v in options.items() if v is not None}}
    if task == spec.CLASSIFY:
        top_k = clean["top_k"]
        if (
            isinstance(top_k, bool)
            or not isinstance(top_k, int)
            or not spec.TOP_K.ge <= top_k <= spec.TOP_K.le
        ):
            raise InvalidInput(f"top_k must be an integer between {spec.TOP_K.ge} and {spec.TOP_K.le}")
    elif task == spec.DETECT:
        clean["threshold"] = _float(clean["threshold"], "threshold", spec.DETECT_THRESHOLD)
    elif task == spec.TRANSCRIBE:
        if clean["language"] is not None and clean["language"] not in spec.LANGUAGES:
            raise InvalidInput(f"language: this model transcribes {', '.join(spec.LANGUAGES)} only")
        if not isinstance(clean["vad_filter"], bool):
            raise InvalidInput("vad_filter must be true or false")
        if clean["prompt"] is not None and not isinstance(clean["prompt"], str):
            raise InvalidInput("prompt must be a string")
        clean["temperature"] = _float(clean["temperature"], "temperature", FloatOption(0.0, 0.0, 1.0))
    elif task == spec.SYNTHESIZE:
        clean["speed"] = _float(clean["speed"], "speed", spec.SPEED)
        if clean["format"] not in spec.AUDIO_FORMATS:
            raise InvalidInput(f"format must be one of {', '.join(spec.AUDIO_FORMATS)}")
    if task in (spec.DETECT, spec.FACES):
        side = clean["max_side"]
        if (
            isinstance(side, bool)
            or not isinstance(side, int)
            or not spec.SEARCH_SIDE.ge <= side <= spec.SEARCH_SIDE.le
        ):
            raise InvalidInput(
                f"max_side must be an integer between {spec.SEARCH_SIDE.ge} and {spec.SEARCH_SIDE.le} (0: full size)"
            )
    if task == spec.FACES and not isinstance(clean["embeddings"], bool):
        raise InvalidInput("embeddings must be true or false")
    return clean


def _item(task: str, item: Mapping[str, Any], where: str) -> Item:
    if task in (spec.CLASSIFY, spec.DETECT, spec.FACES):
        return {"image": _media(item, "image", where, spec.MAX_IMAGE_BYTES)}
    if task == spec.TRANSCRIBE:
        return {"audio": _media(item, "audio", where, spec.MAX_AUDIO_BYTES)}
    text = item.get("text")
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput(f"text: {where}.text must be a non-empty string")
    if len(text) > spec.MAX_SPEECH_CHARS:
        raise InvalidInput(f"text: at most {spec.MAX_SPEECH_CHARS} characters")
    return {"text": text}


def validate(task: str, items: Sequence[Any], options: Mapping[str, Any] | None) -> tuple[list[Item], Item]:
    """Items (media decoded from base64) and options with defaults; InvalidInput naming the field."""
    if not isinstance(options or {}, Mapping):
        raise InvalidInput("options must be an object")
    clean_options = _options(task, options or {})
    prepared = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"inputs[{index}] must be an object")
        prepared.append(_item(task, item, f"inputs[{index}]"))
    return prepared, clean_options


def load(loader: str, path: Path) -> Any:
    """The backend for one of LOADERS (heavy imports happen here, on first use)."""
    if loader in ("efficientnet-lite", "haar-cascades", "dlib-faces", "hub-object-detector"):
        from stratus_worker.inference import vision

        return vision.load(loader, path)
    from stratus_worker.inference import speech

    return speech.load(loader, path)


def run(task: str, backend: Any, items: list[Item], options: Item) -> list[Item]:
    """Each item through `backend` (one model call per item: images and clips differ in size)."""
    return [backend.run(task, item, options) for item in items]
