"""Seed 002's image and face routes through the API, on the real local inference worker and the shipped
weights (EfficientNet-Lite0, OpenCV's cascades, dlib's face embeddings); scikit-image's photos."""

from __future__ import annotations

import io
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image
from skimage import data

from tests.integration.api.accounts import Account

pytestmark = pytest.mark.slow  # starts the inference worker and loads real models


def _encoded(pixels: Any, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=fmt)
    return buffer.getvalue()


def _files(field: str, content: bytes, name: str = "photo.png") -> dict[str, Any]:
    return {field: (name, content, "application/octet-stream")}


async def _post(
    client: httpx.AsyncClient, account: Account, path: str, image: bytes, **form: str
) -> httpx.Response:
    return await client.post(path, headers=account.headers, files=_files("image", image), data=form)


async def test_classify_and_detect(client: httpx.AsyncClient, alice: Account) -> None:
    cat = await _post(client, alice, "/api/image-recognition/classify", _encoded(data.chelsea(), "JPEG"))
    assert cat.status_code == 200, cat.text
    labels = [c["label"] for c in cat.json()["classifications"]]
    assert labels[0] == "Egyptian cat" and {"tabby", "tiger cat"} <= set(labels[:3])
    assert cat.json()["classifications"][0]["confidence"] > 0.5

    found = await _post(client, alice, "/api/image-recognition/detect", _encoded(data.astronaut()))
    assert found.status_code == 200, found.text
    body = found.json()
    faces = [d for d in body["detections"] if d["label"] == "face"]
    assert len(faces) == 1 and "licence_plate" in body["labels"]
    x, y, w, h = faces[0]["bbox"]  # [x, y, width, height]: the astronaut's face
    assert abs(x - 177) < 15 and abs(y - 66) < 15 and 70 < w < 120 and 70 < h < 120


async def test_bad_images_are_refused_naming_the_field(client: httpx.AsyncClient, alice: Account) -> None:
    path = "/api/image-recognition/classify"
    not_image = await _post(client, alice, path, b"hello, I am text")
    assert not_image.status_code == 422 and "image" in not_image.text
    empty = await _post(client, alice, path, b"")
    assert empty.status_code == 422 and "image" in empty.text
    missing = await client.post(path, headers=alice.headers, data={"model": "efficientnet-lite0"})
    assert missing.status_code == 422 and "image" in missing.text
    huge = await _post(client, alice, path, b"\x89PNG\r\n\x1a\n" + bytes(10 * 1024 * 1024))
    assert huge.status_code == 413 and "image" in huge.text
    # A PNG header with a broken body gets past the sniffing and is refused by the worker.
    broken = await _post(client, alice, path, b"\x89PNG\r\n\x1a\n" + b"junk" * 100)
    assert broken.status_code == 400 and "image" in broken.text
    other_task = await _post(client, alice, path, _encoded(data.chelsea()), model="openai/whisper-tiny.en")
    assert other_task.status_code == 422
    me = (await client.get("/api/auth/me", headers=alice.headers)).json()
    assert me["queries_used"] == 1  # only the broken PNG reached a worker


async def test_faces_are_registered_per_user(client: httpx.AsyncClient, alice: Account, bob: Account) -> None:
    astronaut = data.astronaut()
    seen = await _post(client, alice, "/api/face-recognition/detect", _encoded(astronaut))
    assert seen.status_code == 200, seen.text
    (face,) = seen.json()["faces"]
    left, right = face["landmarks"]["left_eye"], face["landmarks"]["right_eye"]
    x, y, w, h = face["bbox"]
    assert x < left[0] < right[0] < x + w and y < left[1] < y + h
    empty = await _post(client, alice, "/api/face-recognition/detect", _encoded(data.coffee()))
    assert empty.status_code == 200 and empty.json() == {"faces": []}

    registered = await _post(
        client, alice, "/api/face-recognition/register", _encoded(astronaut), name="Eileen"
    )
    assert registered.status_code == 201, registered.text
    face_id = registered.json()["face_id"]
    none = await _post(client, alice, "/api/face-recognition/register", _encoded(data.coffee()), name="Cup")
    assert none.status_code == 422 and none.json()["code"] == "NO_FACE" and "image" in none.text
    nameless = await _post(client, alice, "/api/face-recognition/register", _encoded(astronaut))
    assert nameless.status_code == 422 and "name" in nameless.text

    # Another photo of her (mirrored and scaled: different pixels) matches for Alice only.
    other = np.ascontiguousarray(astronaut[:, ::-1])
    other = np.asarray(Image.fromarray(other).resize((400, 400)))
    mine = await _post(client, alice, "/api/face-recognition/recognize", _encoded(other, "JPEG"))
    (match,) = mine.json()["faces"]
    assert match["name"] == "Eileen" and match["face_id"] == face_id and match["confidence"] > 0.4
    theirs = await _post(client, bob, "/api/face-recognition/recognize", _encoded(other, "JPEG"))
    (stranger,) = theirs.json()["faces"]
    assert stranger["name"] is None and stranger["face_id"] is None

    listed = (await client.get("/api/face-recognition/faces", headers=alice.headers)).json()
    assert [f["name"] for f in listed["faces"]] == ["Eileen"] and "embedding" not in listed["faces"][0]
    assert (await client.get("/api/face-recognition/faces", headers=bob.headers)).json()["total"] == 0
    path = f"/api/face-recognition/faces/{face_id}"
    assert (await client.delete(path, headers=bob.headers)).status_code == 404
    assert (await client.delete(path, headers=alice.headers)).status_code == 200
    again = await _post(client, alice, "/api/face-recognition/recognize", _encoded(other, "JPEG"))
    assert again.json()["faces"][0]["name"] is None
