"""Seed 002's audio routes and OpenAI's, through the API on the real local inference worker: Piper speaks
a sentence, Whisper tiny.en transcribes it, and the words come back."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from stratus.local.runtime import LocalPorts
from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and loads real models

SENTENCE = "The quick brown fox jumps over the lazy dog."


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


async def test_speech_round_trip(client: httpx.AsyncClient, alice: Account, ports: LocalPorts) -> None:
    spoken = await client.post(
        "/api/audio/synthesize",
        headers=alice.headers,
        json={"text": SENTENCE, "voice": "default", "speed": 1.0},
    )
    assert spoken.status_code == 200, spoken.text
    speech = spoken.json()
    assert speech["status"] == "completed" and speech["audio_url"] and 1.5 < speech["duration"] < 6
    wav = await ports.storage.get_bytes(speech["audio_key"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"

    heard = await client.post(
        "/api/audio/transcribe", headers=alice.headers, files={"audio": ("speech.wav", wav, "audio/wav")}
    )
    assert heard.status_code == 200, heard.text
    body = heard.json()
    assert _words(body["text"]) == _words(SENTENCE)
    assert body["status"] == "completed" and body["language"] == "en" and body["task_id"]
    assert body["segments"][0]["id"] == 0 and body["segments"][-1]["end"] <= body["duration"] + 0.5

    srt = await client.post(
        "/api/audio/transcribe", headers=alice.headers, files={"audio": ("s.wav", wav)},
        data={"response_format": "srt"},
    )  # fmt: skip
    assert srt.status_code == 200 and re.match(r"1\n00:00:00,000 --> 00:00:0\d,\d{3}\n", srt.text), srt.text
    vtt = await client.post(
        "/api/audio/transcribe", headers=alice.headers, files={"audio": ("s.wav", wav)},
        data={"response_format": "vtt"},
    )  # fmt: skip
    assert vtt.text.startswith("WEBVTT\n\n00:00:00.000 --> ")
    task = (await client.get(f"/api/tasks/{body['task_id']}", headers=alice.headers)).json()
    assert task["status"] == "completed" and task["task"] == "transcription"


async def test_openai_audio_routes(client: httpx.AsyncClient, alice: Account) -> None:
    mp3 = await client.post(
        "/v1/audio/speech", headers=alice.headers,
        json={"model": "tts-1", "input": SENTENCE, "voice": "alloy"},
    )  # fmt: skip
    assert mp3.status_code == 200, mp3.text
    assert mp3.headers["content-type"] == "audio/mpeg" and len(mp3.content) > 5000
    heard = await client.post(
        "/v1/audio/transcriptions", headers=alice.headers,
        files={"file": ("speech.mp3", mp3.content, "audio/mpeg")}, data={"model": "whisper-1"},
    )  # fmt: skip
    assert heard.status_code == 200, heard.text
    assert _words(heard.json()["text"]) == _words(SENTENCE) and set(heard.json()) == {"text"}
    text = await client.post(
        "/v1/audio/transcriptions", headers=alice.headers,
        files={"file": ("speech.mp3", mp3.content)}, data={"model": "whisper-1", "response_format": "text"},
    )  # fmt: skip
    assert text.headers["content-type"].startswith("text/plain") and "fox" in text.text.lower()


async def test_bad_audio_requests_name_the_field(client: httpx.AsyncClient, alice: Account) -> None:
    junk = await client.post(
        "/api/audio/transcribe", headers={**alice.headers, "Prefer": "wait=25"},
        files={"audio": ("a.wav", b"not audio" * 50)},
    )  # fmt: skip
    if junk.status_code == 202:  # the worker was still starting: the task fails with the same reason
        async with asyncio.timeout(120):
            while (task := (await client.get(junk.headers["Location"], headers=alice.headers)).json())[
                "status"
            ] == "pending":
                await asyncio.sleep(0.5)
        assert task["status"] == "failed" and task["error"].startswith("audio:")
    else:
        assert junk.status_code == 400 and junk.json()["detail"].startswith("audio:")
    empty = await client.post("/api/audio/transcribe", headers=alice.headers, files={"audio": ("a.wav", b"")})
    assert empty.status_code == 422 and "audio" in empty.text
    pitch = await client.post("/api/audio/synthesize", headers=alice.headers, json={"text": "hi", "pitch": 3})
    assert pitch.status_code == 422 and "pitch" in pitch.text
    voice = await client.post(
        "/api/audio/synthesize", headers=alice.headers, json={"text": "hi", "voice": "default-female"}
    )
    assert voice.status_code == 422 and "voice" in voice.text
    model = await client.post(
        "/v1/audio/transcriptions", headers=alice.headers,
        files={"file": ("a.wav", b"RIFF")}, data={"model": "large-v3"},
    )  # fmt: skip
    assert model.status_code == 404 and "openai/whisper-tiny.en" in model.text
