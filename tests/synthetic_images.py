"""Small image datasets for the tests: one folder per class of coloured shapes (random size, position
and a noisy background), as a ZIP the API ingests and the image training worker reads."""

from __future__ import annotations

import io
import random
import zipfile

from PIL import Image, ImageDraw

SHAPES = {"circle": (220, 40, 40), "square": (40, 80, 220), "triangle": (40, 180, 60)}


def shape_image(label: str, rng: random.Random, size: int = 72) -> Image.Image:
    background = tuple(rng.randint(180, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    for _ in range(30):  # speckle, so no two images are alike
        x, y = rng.randrange(size), rng.randrange(size)
        draw.point((x, y), fill=tuple(rng.randint(120, 255) for _ in range(3)))
    side = rng.randint(size // 3, size * 2 // 3)
    left, top = rng.randint(0, size - side), rng.randint(0, size - side)
    box = (left, top, left + side, top + side)
    colour = tuple(min(255, max(0, c + rng.randint(-25, 25))) for c in SHAPES[label])
    if label == "circle":
        draw.ellipse(box, fill=colour)
    elif label == "square":
        draw.rectangle(box, fill=colour)
    else:
        draw.polygon([(left, top + side), (left + side, top + side), (left + side // 2, top)], fill=colour)
    return image


def png(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def shapes_zip(
    per_class: int = 24,
    *,
    classes: tuple[str, ...] = tuple(SHAPES),
    seed: int = 0,
    corrupt: int = 0,
) -> bytes:
    """`per_class` PNGs per class under `<class>/`, plus `corrupt` files that only look like PNGs."""
    rng = random.Random(seed)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for label in classes:
            for i in range(per_class):
                archive.writestr(f"shapes/{label}/{i:03d}.png", png(shape_image(label, rng)))
        for i in range(corrupt):
            archive.writestr(f"shapes/{classes[0]}/broken{i}.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    return buffer.getvalue()
