"""The perception capability's pure parts: transcript formats, the camera's one-frame slot, frame
decoding, image sniffing, and the limits the API and the worker share."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest

from stratus.capabilities.perception import spec
from stratus.capabilities.perception.camera import Frame, LatestFrame, decode_frame
from stratus.capabilities.perception.schemas import looks_like_image
from stratus.capabilities.perception.transcripts import render, srt, vtt
from stratus_worker.inference import perception
from stratus_worker.inference.errors import InvalidInput

SEGMENTS = [
    {"id": 0, "start": 0.0, "end": 2.5, "text": "Hello, this is"},
    {"id": 1, "start": 2.5, "end": 3661.0456, "text": "a test."},
]


def test_srt_and_vtt() -> None:
    assert srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello, this is\n\n2\n00:00:02,500 --> 01:01:01,046\na test.\n"
    )
    assert vtt(SEGMENTS) == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:02.500\nHello, this is\n\n00:00:02.500 --> 01:01:01.046\na test.\n"
    )


def test_json_shapes() -> None:
    result = {"text": "Hello, this is a test.", "language": "en", "duration": 5.2, "segments": SEGMENTS}
    seed, _ = render("t1", result, "json", openai=False)
    assert seed["task_id"] == "t1" and seed["status"] == "completed" and seed["duration"] == 5.2
    assert seed["segments"][0] == {"id": 0, "start": 0.0, "end": 2.5, "text": "Hello, this is"}
    assert render("t1", result, "json", openai=True)[0] == {"text": "Hello, this is a test."}
    verbose, _ = render("t1", result, "verbose_json", openai=True)
    assert verbose["language"] == "english" and verbose["segments"] == SEGMENTS
    assert render("t1", result, "text", openai=True) == ("Hello, this is a test.\n", "text/plain")


def _frame(number: int) -> Frame:
    return Frame(number, b"x", None, 0.0)


async def test_the_slot_keeps_only_the_newest_frame() -> None:
    slot = LatestFrame()
    for number in range(1, 6):
        slot.put(_frame(number))
    taken = await slot.take()
    assert taken is not None and taken.number == 5 and (slot.received, slot.dropped) == (5, 4)
    waiting = asyncio.ensure_future(slot.take())
    await asyncio.sleep(0)
    slot.put(_frame(6))
    assert (await asyncio.wait_for(waiting, 5)) == _frame(6)
    slot.close()
    assert await slot.take() is None


def test_decode_frame() -> None:
    png = b"\x89PNG\r\n\x1a\n1234"
    encoded = base64.b64encode(png).decode()
    assert decode_frame({"bytes": png}) == (png, None)
    assert decode_frame({"text": encoded}) == (png, None)
    assert decode_frame({"text": f"data:image/png;base64,{encoded}"}) == (png, None)
    assert decode_frame({"text": json.dumps({"image": encoded})}) == (png, None)
    assert decode_frame({"text": "{not json"})[1] == "image: the message is not JSON with an `image` field"
    assert decode_frame({"bytes": b""})[1] == "image: the frame is empty"
    assert decode_frame({"bytes": bytes(spec.MAX_IMAGE_BYTES + 1)})[1] == "image: larger than 10 MB"


def test_image_sniffing() -> None:
    assert looks_like_image(b"\xff\xd8\xff\xe0") and looks_like_image(b"RIFF\x00\x00\x00\x00WEBPVP8 ")
    assert not looks_like_image(b"hello") and not looks_like_image(b"RIFF\x00\x00\x00\x00WAVEfmt ")


@pytest.mark.parametrize(
    ("task", "item", "options", "message"),
    [
        (spec.CLASSIFY, {"image": "aGk="}, {"top_k": spec.TOP_K.le + 1}, "top_k must be an integer between"),
        (spec.CLASSIFY, {"image": "aGk="}, {"top_k": spec.TOP_K.ge - 1}, "top_k must be an integer between"),
        (spec.DETECT, {"image": "aGk="}, {"threshold": spec.DETECT_THRESHOLD.le + 0.1}, "threshold must be"),
        (spec.SYNTHESIZE, {"text": "hi"}, {"speed": spec.SPEED.le + 0.1}, "speed must be between"),
        (spec.SYNTHESIZE, {"text": "hi"}, {"speed": spec.SPEED.ge - 0.1}, "speed must be between"),
        (spec.SYNTHESIZE, {"text": "x" * (spec.MAX_SPEECH_CHARS + 1)}, {}, "text: at most"),
        (spec.SYNTHESIZE, {"text": "hi"}, {"format": "ogg"}, "format must be one of"),
        (spec.TRANSCRIBE, {"audio": "aGk="}, {"language": "fr"}, "language: this model transcribes en only"),
        (spec.TRANSCRIBE, {"audio": "not base64!"}, {}, "audio: inputs[0].audio is not valid base64"),
        (spec.FACES, {}, {}, "image: inputs[0].image must be a non-empty base64 string"),
        (spec.FACES, {"image": "aGk="}, {"top_k": 3}, "Unknown option(s) for face-analysis: top_k"),
        (spec.FACES, {"image": "aGk="}, {"max_side": -1}, "max_side must be an integer between"),
        (
            spec.DETECT,
            {"image": "aGk="},
            {"max_side": spec.SEARCH_SIDE.le + 1},
            "max_side must be an integer",
        ),
        (spec.DETECT, {"image": "aGk="}, {"max_side": True}, "max_side must be an integer between"),
        (spec.FACES, {"image": "aGk="}, {"embeddings": "no"}, "embeddings must be true or false"),
    ],
)
def test_the_worker_enforces_the_shared_limits(
    task: str, item: dict[str, str], options: dict[str, object], message: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        perception.validate(task, [item], options)
    assert refused.value.message.startswith(message)


def test_the_limits_themselves_pass() -> None:
    items, options = perception.validate(spec.SYNTHESIZE, [{"text": "x" * spec.MAX_SPEECH_CHARS}],
                                         {"speed": spec.SPEED.le})  # fmt: skip
    assert (
        options == {"speed": spec.SPEED.le, "format": "wav"}
        and len(items[0]["text"]) == spec.MAX_SPEECH_CHARS
    )
    # Validated items (bytes already) pass again unchanged: the engine checks before it runs.
    decoded, _ = perception.validate(spec.CLASSIFY, [{"image": "aGk="}], {"top_k": spec.TOP_K.le})
    assert perception.validate(spec.CLASSIFY, decoded, {})[0] == [{"image": b"hi"}]
