"""The generation routes through the local app on a real database, up to the queue: what a request
records (seed picked and kept, resolved parameters, the mode's kind, the source image under the user's
prefix), 202 with a Location under `Prefer: respond-async`, idempotency, refusals that name the field
and queue nothing, models (built-in and a downloaded diffusers repository), and tenant isolation."""

from __future__ import annotations

import io
from typing import Any

import httpx
from bson import ObjectId
from PIL import Image

from stratus.capabilities.media import spec
from stratus.composition import Container
from tests.integration.api.accounts import Account

ASYNC = {"Prefer": "respond-async"}


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (1, 2, 3)).save(buffer, format="PNG")
    return buffer.getvalue()


async def _jobs(client: httpx.AsyncClient, who: Account) -> list[dict[str, Any]]:
    jobs: list[dict[str, Any]] = (await client.get("/api/jobs", headers=who.headers)).json()["jobs"]
    return jobs


async def test_a_request_records_a_reproducible_job(
    client: httpx.AsyncClient, alice: Account, bob: Account, container: Container
) -> None:
    body = {"prompt": "a fox", "width": 128, "height": 64, "num_inference_steps": 3}
    answer = await client.post("/api/text-to-image/generate", headers=alice.headers | ASYNC, json=body)
    assert answer.status_code == 202, answer.text
    task = answer.json()
    assert answer.headers["Location"] == f"/api/text-to-image/status/{task['task_id']}"
    assert task["status"] in ("pending", "processing") and task["progress"] == 0 and task["image_url"] is None
    assert isinstance(task["seed"], int) and task["params"]["seed"] == task["seed"]
    assert (
        task["params"] | body == task["params"] and task["params"]["guidance_scale"] == spec.GUIDANCE.default
    )
    job = await container.job_repo.get(ObjectId(task["task_id"]))
    assert job is not None and job["kind"] == "image_generation" and job["total_steps"] == 3
    assert job["params"]["model"] == {"name": spec.TINY_IMAGE_MODEL, "builtin": True}

    keyed = alice.headers | ASYNC | {"Idempotency-Key": "same"}
    one = await client.post("/api/text-to-image/generate", headers=keyed, json=body)
    two = await client.post("/api/text-to-image/generate", headers=keyed, json=body)
    assert one.json()["task_id"] == two.json()["task_id"]

    # Another user's task answers like a missing one; another mode's route too.
    assert (
        await client.get(f"/api/text-to-image/status/{task['task_id']}", headers=bob.headers)
    ).status_code == 404
    assert (
        await client.get(f"/api/text-to-video/status/{task['task_id']}", headers=alice.headers)
    ).status_code == 404


async def test_uploads_are_stored_under_the_users_prefix(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    answer = await client.post(
        "/api/image-to-video/generate", headers=alice.headers | ASYNC,
        files={"image": ("a.png", _png((300, 200)), "image/png")}, data={"num_frames": "4", "strength": "0.5"},
    )  # fmt: skip
    assert answer.status_code == 202, answer.text
    job = await container.job_repo.get(ObjectId(answer.json()["task_id"]))
    assert job is not None and job["kind"] == "video_generation"
    params = job["params"]
    assert params["image_key"].startswith(f"users/{alice.user_id}/media/inputs/")
    assert (params["width"], params["height"]) == (256, 168)  # the source's aspect, longer side 256
    assert job["total_steps"] == int(spec.VIDEO_STEPS.default * 0.5)
    assert await container.ports.storage.head(params["image_key"]) is not None


async def test_refusals_name_the_field_and_queue_nothing(client: httpx.AsyncClient, alice: Account) -> None:
    cases: list[tuple[str, dict[str, Any], str]] = [
        ("/api/text-to-image/generate", {"json": {"prompt": "p", "width": 500}}, "width"),
        ("/api/text-to-image/generate", {"json": {"prompt": "p", "num_inference_steps": 500}}, "num_inference_steps"),
        ("/api/text-to-image/generate", {"json": {"prompt": "p", "guidance_scale": 99}}, "guidance_scale"),
        ("/api/text-to-image/generate", {"json": {"prompt": "x" * 2001}}, "prompt"),
        ("/api/text-to-video/generate", {"json": {"prompt": "p", "num_frames": 500}}, "num_frames"),
        ("/api/image-to-image/generate",
         {"files": {"image": ("a.png", _png((8, 8)), "image/png")}, "data": {"prompt": "p", "strength": "1.5"}}, "strength"),
        ("/api/image-to-image/generate",
         {"files": {"image": ("a.txt", b"plain text", "text/plain")}, "data": {"prompt": "p"}}, "image"),
        ("/v1/images/generations", {"json": {"prompt": "p", "size": "100x100"}}, "size"),
        ("/v1/images/generations", {"json": {"prompt": "p", "n": 2}}, "n"),
    ]  # fmt: skip
    for path, request, field in cases:
        answer = await client.post(path, headers=alice.headers, **request)
        assert answer.status_code == 422, (path, answer.text)
        assert field in {d["field"].split(".")[-1] for d in answer.json()["details"]}, (path, answer.text)
    assert await _jobs(client, alice) == []


async def test_models_and_a_downloaded_diffusers_repository(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    listed = (await client.get("/api/text-to-video/models", headers=alice.headers)).json()
    assert [m["id"] for m in listed] == [spec.TINY_VIDEO_MODEL]
    missing = await client.post("/api/text-to-image/generate", headers=alice.headers | ASYNC,
                                json={"prompt": "p", "model_id": "stable-diffusion-v1-5"})  # fmt: skip
    assert missing.status_code == 404 and spec.TINY_IMAGE_MODEL in missing.text
    wrong = await client.post("/api/text-to-image/generate", headers=alice.headers | ASYNC,
                              json={"prompt": "p", "model_id": spec.TINY_VIDEO_MODEL})  # fmt: skip
    assert wrong.status_code == 422

    await container.model_repo.register_for_job(
        ObjectId(alice.user_id), ObjectId(),
        {"name": "stable-diffusion-v1-5", "name_key": "stable-diffusion-v1-5", "source": "hub", "status": "ready",
         "model_type": "diffusers", "architecture": {"class": "StableDiffusionPipeline"}, "tasks": [],
         "files": ["model_index.json"], "artifacts": {"snapshot": "users/x/jobs/y/snapshot"}, "revision": "abc"},
    )  # fmt: skip
    ids = [m["id"] for m in (await client.get("/api/text-to-image/models", headers=alice.headers)).json()]
    assert ids == [spec.TINY_IMAGE_MODEL, "stable-diffusion-v1-5"]
    queued = await client.post("/api/text-to-image/generate", headers=alice.headers | ASYNC,
                               json={"prompt": "p", "model_id": "stable-diffusion-v1-5"})  # fmt: skip
    assert queued.status_code == 202, queued.text
    job = await container.job_repo.get(ObjectId(queued.json()["task_id"]))
    assert job is not None
    assert job["params"]["model"]["source"] == {"snapshot": "users/x/jobs/y/snapshot", "files": ["model_index.json"],
                                                "revision": "abc"}  # fmt: skip
