"""A transcript in the response formats of Whisper's API: json, verbose_json, text, srt and vtt."""

from __future__ import annotations

from typing import Any

_LANGUAGE_NAMES = {"en": "english"}


def _clock(seconds: float, separator: str) -> str:
    millis = round(seconds * 1000)
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{millis:03d}"


def srt(segments: list[dict[str, Any]]) -> str:
    blocks = [
        f"{i}\n{_clock(s['start'], ',')} --> {_clock(s['end'], ',')}\n{s['text']}\n"
        for i, s in enumerate(segments, start=1)
    ]
    return "\n".join(blocks)


def vtt(segments: list[dict[str, Any]]) -> str:
    blocks = [f"{_clock(s['start'], '.')} --> {_clock(s['end'], '.')}\n{s['text']}\n" for s in segments]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(task_id: str, result: dict[str, Any], response_format: str, *, openai: bool) -> tuple[Any, str]:
    """(body, media type): a dict for the JSON formats, a string for the others."""
    segments = list(result.get("segments") or [])
    if response_format == "text":
        return result["text"] + "\n", "text/plain"
    if response_format == "srt":
        return srt(segments), "application/x-subrip"
    if response_format == "vtt":
        return vtt(segments), "text/vtt"
    if response_format == "verbose_json":
        language = result.get("language") or ""
        return {
            "task": "transcribe",
            "task_id": task_id,
            "language": _LANGUAGE_NAMES.get(language, language) if openai else language,
            "duration": result.get("duration"),
            "text": result["text"],
            "segments": segments,
        }, "application/json"
    if openai:
        return {"text": result["text"]}, "application/json"
    return {
        "task_id": task_id,
        "status": "completed",
        "text": result["text"],
        "language": result.get("language"),
        "duration": result.get("duration"),
        "segments": [{k: s[k] for k in ("id", "start", "end", "text")} for s in segments],
    }, "application/json"
