"""Previews from the latents, without an extra model: a fixed linear latent-to-RGB projection.

Stable Diffusion's 4 latent channels map to RGB almost linearly (the factors below are the widely used
approximation for SD 1.x/2.x latents; SDXL's are close enough for a thumbnail). A latent pixel covers
8x8 image pixels, so a 512x512 generation previews at 64x64 without any resize. Latents of another
channel count preview their first three channels.
"""

from __future__ import annotations

import base64
import io
from typing import Any

from stratus.capabilities.media import spec

LATENT_RGB_FACTORS = (
    (0.3512, 0.2297, 0.3227),
    (0.3250, 0.4974, 0.2350),
    (-0.2829, 0.1762, 0.2721),
    (-0.2120, -0.2616, -0.7177),
)


def latents_to_rgb(latents: Any) -> Any:
    """(C, h, w) latents of one image -> (h, w, 3) uint8 (torch tensors)."""
    import torch

    x = latents.detach().to(device="cpu", dtype=torch.float32)
    if x.shape[0] == len(LATENT_RGB_FACTORS):
        rgb = torch.einsum("chw,cr->hwr", x, torch.tensor(LATENT_RGB_FACTORS))
    else:
        rgb = x[:3].permute(1, 2, 0)
    return ((rgb + 1.0) * 127.5).clamp(0, 255).to(torch.uint8)


def preview_png(latents: Any, max_side: int = spec.PREVIEW_MAX_SIDE) -> bytes:
    """A small PNG of the first item of a batch of latents: (B, C, h, w) for images, (B, C, F, h, w) for
    video (its middle frame)."""
    from PIL import Image

    item = latents[0]
    if item.dim() == 4:  # video: (C, F, h, w)
        item = item[:, item.shape[1] // 2]
    image = Image.fromarray(latents_to_rgb(item).numpy())
    if max(image.size) > max_side:
        scale = max_side / max(image.size)
        image = image.resize((max(1, round(image.width * scale)), max(1, round(image.height * scale))))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()
