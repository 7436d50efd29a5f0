"""The generation kinds run in-process on the built-in tiny pipelines (built from configs, saved, loaded
back with from_pretrained): sizes, same seed -> same bytes, per-step progress with previews, strength,
a playable MP4, and a stop that interrupts the denoising loop."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from PIL import Image

from stratus.capabilities.media import spec
from stratus_worker.generation import preview, tiny
from tests.unit.worker.harness import Harness

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module", autouse=True)
def _model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One cache for the module: the tiny pipelines are built once (and must load from it)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("STRATUS_MODEL_CACHE", str(tmp_path_factory.mktemp("model-cache")))
    mp.setattr(spec, "PREVIEW_INTERVAL_S", 0.0)  # a preview every step, so each run shows some
    yield
    mp.undo()


def _params(mode: str, **extra: Any) -> dict[str, Any]:
    video = mode in spec.VIDEO_MODES
    base: dict[str, Any] = {
        "mode": mode,
        "model": {"name": spec.TINY_VIDEO_MODEL if video else spec.TINY_IMAGE_MODEL, "builtin": True},
        "prompt": "a red fox in the snow",
        "negative_prompt": "blurry",
        "width": 64 if video else 80,
        "height": 64,
        "num_inference_steps": 2,
        "guidance_scale": 7.5,
        "seed": 1234,
    }
    if video:
        base |= {"num_frames": 3, "fps": 6}
    return base | extra


def _png(size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buffer, format="PNG")
    return buffer.getvalue()


def _run(harness: Harness, params: dict[str, Any], job_id: str) -> dict[str, Any]:
    assert harness.run(params, kind=spec.MODES[params["mode"]], job_id=job_id) == 0, harness.sink.result
    result = harness.sink.result
    assert result["status"] == "completed", result
    return result


def _bytes(harness: Harness, key: str) -> bytes:
    import asyncio

    return asyncio.run(harness.storage.get_bytes(key))


def test_text_to_image_is_reproducible_and_reports_every_step(harness: Harness) -> None:
    first = _run(harness, _params(spec.TEXT_TO_IMAGE), "t2i-a")
    progress = [e for e in harness.sink.of("Stratus Job Progress") if e["phase"] == "generating"]
    assert [p["step"] for p in progress] == [1, 2] and all(p["total_steps"] == 2 for p in progress)
    assert all("eta_s" in p["metrics"] for p in progress)
    assert progress[0]["metrics"]["preview"].startswith("data:image/png;base64,")
    png = _bytes(harness, first["artifacts"]["image"])
    assert Image.open(io.BytesIO(png)).size == (80, 64)
    record = json.loads(_bytes(harness, first["artifacts"]["record"]))
    assert record["seed"] == 1234 and record["model"] == spec.TINY_IMAGE_MODEL
    assert record["params"]["num_inference_steps"] == 2 and record["scheduler"] == "DDIMScheduler"
    assert set(record["durations"]) >= {"load_s", "generate_s", "encode_s", "total_s", "preview_s"}
    assert first["final_metrics"]["seed"] == 1234

    second = _run(harness, _params(spec.TEXT_TO_IMAGE), "t2i-b")
    assert _bytes(harness, second["artifacts"]["image"]) == png
    other = _run(harness, _params(spec.TEXT_TO_IMAGE, seed=99), "t2i-c")
    assert _bytes(harness, other["artifacts"]["image"]) != png


def test_image_to_image_runs_strength_of_the_steps(harness: Harness) -> None:
    key = harness.upload("users/u/media/inputs/src.png", _png((80, 60)))
    params = _params(spec.IMAGE_TO_IMAGE, image_key=key, strength=0.5, num_inference_steps=4)
    result = _run(harness, params, "i2i")
    steps = [e["step"] for e in harness.sink.of("Stratus Job Progress") if e["phase"] == "generating"]
    assert steps == [1, 2]  # 4 steps at strength 0.5
    assert Image.open(io.BytesIO(_bytes(harness, result["artifacts"]["image"]))).size == (80, 64)


def _decode(data: bytes) -> list[Any]:
    with av.open(io.BytesIO(data), mode="r") as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        return [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]


def test_text_to_video_is_a_playable_reproducible_mp4(harness: Harness) -> None:
    result = _run(harness, _params(spec.TEXT_TO_VIDEO), "t2v-a")
    data = _bytes(harness, result["artifacts"]["video"])
    frames = _decode(data)
    assert len(frames) == 3 and frames[0].shape == (64, 64, 3)
    again = _run(harness, _params(spec.TEXT_TO_VIDEO), "t2v-b")
    assert _bytes(harness, again["artifacts"]["video"]) == data


def test_image_to_video_animates_the_source(harness: Harness) -> None:
    key = harness.upload("users/u/media/inputs/src.png", _png((64, 64)))
    result = _run(harness, _params(spec.IMAGE_TO_VIDEO, image_key=key, strength=1.0, prompt=""), "i2v")
    assert len(_decode(_bytes(harness, result["artifacts"]["video"]))) == 3


def test_a_stop_interrupts_the_denoising_loop(harness: Harness) -> None:
    def stop_on_first_step(event: Any) -> None:
        if event.detail.get("phase") == "generating" and harness.ctx is not None:
            harness.ctx.should_stop = True

    harness.sink.on_publish = stop_on_first_step
    code = harness.run(
        _params(spec.TEXT_TO_IMAGE, num_inference_steps=5), kind="image_generation", job_id="s"
    )
    assert code == 143 and harness.sink.result["status"] == "stopped"
    assert len([e for e in harness.sink.of("Stratus Job Progress") if e["phase"] == "generating"]) == 1


def test_worker_refuses_parameters_outside_the_limits(harness: Harness) -> None:
    assert harness.run(_params(spec.TEXT_TO_IMAGE, width=65), kind="image_generation", job_id="bad") == 1
    assert "width" in harness.sink.result["error"]


def test_a_diffusers_directory_loads_with_from_pretrained(tmp_path: Path) -> None:
    """The built-in pipeline is an ordinary diffusers directory (model_index.json and components)."""
    import os

    path = tiny.ensure_built(spec.TINY_IMAGE_MODEL, Path(os.environ["STRATUS_MODEL_CACHE"]))
    index = json.loads((path / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionPipeline"
    assert {"unet", "vae", "text_encoder", "tokenizer", "scheduler"} <= set(index)


def test_preview_projection_is_fixed_and_small() -> None:
    import torch

    latents = torch.zeros(1, 4, 64, 96)
    png = preview.preview_png(latents)
    image = Image.open(io.BytesIO(png))
    assert image.size == (64, 43) and image.getpixel((0, 0)) == (127, 127, 127)
    video = torch.ones(1, 4, 5, 8, 8)
    assert Image.open(io.BytesIO(preview.preview_png(video))).size == (8, 8)


def test_a_downloaded_diffusers_repository_serves_as_model_id(harness: Harness) -> None:
    """A diffusers repository in object storage (as a download job leaves it) is copied to the model cache
    and loaded with from_pretrained: here the tiny pipeline's own files, so the image is the built-in's."""
    import os

    built = tiny.ensure_built(spec.TINY_IMAGE_MODEL, Path(os.environ["STRATUS_MODEL_CACHE"]))
    prefix = "users/u/jobs/download-1/snapshot"
    files = [p.relative_to(built).as_posix() for p in sorted(built.rglob("*")) if p.is_file()]
    for name in files:
        harness.upload(f"{prefix}/{name}", (built / name).read_bytes())
    source = {"snapshot": prefix, "files": files, "revision": "abc123"}
    downloaded = _run(harness, _params(spec.TEXT_TO_IMAGE, model={"name": "me/sd", "source": source}), "dl")
    builtin = _run(harness, _params(spec.TEXT_TO_IMAGE), "dl-builtin")
    assert downloaded["final_metrics"]["model"] == "me/sd"
    assert _bytes(harness, downloaded["artifacts"]["image"]) == _bytes(harness, builtin["artifacts"]["image"])
