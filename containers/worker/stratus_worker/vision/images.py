"""Images in and out of tensors, with PIL (there is no torchvision CPU build here): decoding, the one
resize-and-crop both training and prediction use, a stratified split, and the augmentation.

A dataset is decoded once, to uint8 squares of the training size (3 x size x size bytes an image), so an
epoch does no decoding; augmentation and normalisation run on each batch's tensor.
"""

from __future__ import annotations

import io
import random
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import PurePosixPath

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.nn import functional as F

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp"})
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# What a crop keeps of the image's side during augmentation (then resized back to the full size).
CROP_SCALE = (0.75, 1.0)


def square(image: Image.Image, size: int) -> torch.Tensor:
    """RGB, the shorter side resized to `size`, the centre `size` x `size` kept: uint8 (3, size, size)."""
    image = image.convert("RGB")
    width, height = image.size
    scale = size / min(width, height)
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), Image.Resampling.BILINEAR
    )
    left, top = (resized.width - size) // 2, (resized.height - size) // 2
    cropped = resized.crop((left, top, left + size, top + size))
    return torch.from_numpy(np.asarray(cropped, dtype=np.uint8).copy()).permute(2, 0, 1)


def normalise(batch: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...]) -> torch.Tensor:
    """uint8 (n, 3, h, w) -> float, scaled to [0, 1] then standardised per channel."""
    x = batch.float().div_(255.0)
    m = torch.tensor(mean, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return x.sub_(m).div_(s)


def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flips and random crops (resized back), per image, on a float batch."""
    n, _, size, _ = batch.shape
    flips = torch.rand(n, generator=generator) < 0.5
    out = torch.where(flips.view(n, 1, 1, 1).to(batch.device), batch.flip(3), batch)
    scales = torch.empty(n).uniform_(*CROP_SCALE, generator=generator)
    crops = []
    for i in range(n):
        side = max(1, int(size * float(scales[i])))
        top, left = (int(v) for v in torch.randint(0, size - side + 1, (2,), generator=generator))
        crop = out[i : i + 1, :, top : top + side, left : left + side]
        crops.append(crop if side == size else F.interpolate(crop, size=(size, size), mode="bilinear"))
    return torch.cat(crops)


@dataclass
class Decoded:
    images: torch.Tensor  # uint8 (n, 3, size, size)
    targets: torch.Tensor  # int64 (n,)
    labels: list[str]  # class names, sorted; targets index them
    skipped: list[str]  # members that did not decode


def members(archive: zipfile.ZipFile) -> Iterator[tuple[zipfile.ZipInfo, str]]:
    """(member, class label) for each image in a class folder, as the API's ingest counted them."""
    for info in sorted(archive.infolist(), key=lambda i: i.filename):
        parts = PurePosixPath(info.filename.replace("\\", "/")).parts
        if info.is_dir() or len(parts) < 2 or parts[0] == "__MACOSX" or any(p.startswith(".") for p in parts):
            continue
        if PurePosixPath(parts[-1]).suffix.lower() in IMAGE_SUFFIXES:
            yield info, parts[-2]


def decode_zip(archive: zipfile.ZipFile, size: int) -> Decoded:
    """Every image of the archive as a `size` square; those that do not decode are skipped and named."""
    found = list(members(archive))
    labels = sorted({label for _, label in found})
    index = {label: i for i, label in enumerate(labels)}
    tensors: list[torch.Tensor] = []
    targets: list[int] = []
    skipped: list[str] = []
    for info, label in found:
        try:
            with Image.open(io.BytesIO(archive.read(info))) as image:
                tensors.append(square(image, size))
        except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError):
            skipped.append(info.filename)
            continue
        targets.append(index[label])
    images = torch.stack(tensors) if tensors else torch.empty((0, 3, size, size), dtype=torch.uint8)
    return Decoded(images, torch.tensor(targets, dtype=torch.int64), labels, skipped)


def stratified_split(targets: list[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """(train, validation) indices: about `fraction` of each class held out, at least one per class
    and never all of it."""
    by_class: dict[int, list[int]] = {}
    for i, target in enumerate(targets):
        by_class.setdefault(target, []).append(i)
    rng = random.Random(seed)
    train: list[int] = []
    held: list[int] = []
    for target in sorted(by_class):
        items = by_class[target]
        rng.shuffle(items)
        n = min(max(1, round(len(items) * fraction)), len(items) - 1)
        held += items[:n]
        train += items[n:]
    return sorted(train), sorted(held)
