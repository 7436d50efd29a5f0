"""Loading diffusers pipelines: a built-in tiny one (built on first use), a downloaded diffusers repository
(copied from object storage), or any diffusers directory, always through `from_pretrained` on a
directory. Loaded pipelines are kept per (directory, mode) for the life of the process.

Each mode is a pipeline class over the same components: text-to-image StableDiffusion(XL)Pipeline,
image-to-image StableDiffusion(XL)Img2ImgPipeline, text-to-video TextToVideoSDPipeline, and
image-to-video VideoToVideoSDPipeline animating the source image (repeated as the first video, noised
to `strength`, then denoised with the 3D UNet, which makes the frames differ coherently).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratus.capabilities.media import spec

_LOADED: dict[tuple[str, str, str], Any] = {}

# model_index.json `_class_name` -> the pipeline class per mode.
_FAMILIES: dict[str, dict[str, str]] = {
    "sd": {
        spec.TEXT_TO_IMAGE: "StableDiffusionPipeline",
        spec.IMAGE_TO_IMAGE: "StableDiffusionImg2ImgPipeline",
    },
    "sdxl": {
        spec.TEXT_TO_IMAGE: "StableDiffusionXLPipeline",
        spec.IMAGE_TO_IMAGE: "StableDiffusionXLImg2ImgPipeline",
    },
    "video": {spec.TEXT_TO_VIDEO: "TextToVideoSDPipeline", spec.IMAGE_TO_VIDEO: "VideoToVideoSDPipeline"},
}


def family(class_name: str) -> str:
    if class_name.startswith("StableDiffusionXL"):
        return "sdxl"
    if class_name in spec.VIDEO_PIPELINES:
        return "video"
    if class_name in spec.IMAGE_PIPELINES:
        return "sd"
    raise ValueError(
        f"{class_name} is not a pipeline these routes run (they run {', '.join(spec.IMAGE_PIPELINES + spec.VIDEO_PIPELINES)})"
    )


def pipeline_class_name(path: Path) -> str:
    index = json.loads((path / "model_index.json").read_text())
    return str(index.get("_class_name") or "")


def device_and_dtype(requested: str | None = None) -> tuple[Any, Any]:
    """CUDA in float16 when there is a GPU (unless STRATUS_GENERATION_DEVICE says cpu), else CPU float32."""
    import os

    import torch

    choice = requested or os.environ.get("STRATUS_GENERATION_DEVICE", "auto")
    if choice in ("auto", "cuda") and torch.cuda.is_available():
        return torch.device("cuda"), torch.float16
    return torch.device("cpu"), torch.float32


def configure_threads() -> None:
    """CPU threads for torch: STRATUS_GENERATION_THREADS, else 1 on a CPU-only machine of few cores,
    where more threads spin against each other (measured here: 10-25x slower at 2 threads under load)."""
    import os

    import torch

    wanted = os.environ.get("STRATUS_GENERATION_THREADS")
    if wanted:
        torch.set_num_threads(max(1, int(wanted)))
    elif not torch.cuda.is_available() and (os.cpu_count() or 1) <= 4:
        torch.set_num_threads(1)


def load(path: Path, mode: str, *, device: Any = None, dtype: Any = None) -> Any:
    """The pipeline for `mode` over the diffusers directory `path` (cached)."""
    import importlib

    diffusers: Any = importlib.import_module("diffusers")  # untyped constructors
    if device is None or dtype is None:
        device, dtype = device_and_dtype()
    key = (str(path.resolve()), mode, f"{device}/{dtype}")
    if key in _LOADED:
        return _LOADED[key]
    names = _FAMILIES[family(pipeline_class_name(path))]
    if mode not in names:
        raise ValueError(f"this model does not do {mode}; it does: {', '.join(names)}")
    # Load the repository once with its own class, then build each mode's class over the same components.
    base_key = (str(path.resolve()), "", f"{device}/{dtype}")
    base = _LOADED.get(base_key)
    if base is None:
        base = diffusers.DiffusionPipeline.from_pretrained(path, dtype=dtype).to(device)
        base.set_progress_bar_config(disable=True)
        _LOADED[base_key] = base
    cls = getattr(diffusers, names[mode])
    pipe = base if type(base) is cls else cls(**_components(cls, base.components))
    pipe.set_progress_bar_config(disable=True)
    _LOADED[key] = pipe
    return pipe


def _components(cls: Any, components: Mapping[str, Any]) -> dict[str, Any]:
    """The components `cls` takes (an img2img pipeline takes no more than its text-to-image sibling)."""
    import inspect

    accepted = set(inspect.signature(cls.__init__).parameters) - {"self"}
    return {name: value for name, value in components.items() if name in accepted}
