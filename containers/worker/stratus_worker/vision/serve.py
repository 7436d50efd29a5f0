"""Predictions with trained image classifiers, on the inference worker (never in the API).

A request names the model's descriptor (`source.descriptor`, the `model.json` that `vision.train` saved)
and carries base64 images. The descriptor and weights are copied from object storage on first use and
the model is kept loaded (least recently used unloaded beyond `max_loaded`); one forward pass answers
all of a request's images. Images are checked before they are decoded: their bytes, then the pixel
count their header declares, so a decompression bomb is refused without being expanded.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from PIL import Image, UnidentifiedImageError

from stratus.capabilities.training import images as spec
from stratus.errors import DomainError
from stratus.ports.storage import ObjectStorage
from stratus_worker.inference.errors import InvalidInput, ModelUnavailable
from stratus_worker.vision import backbones
from stratus_worker.vision.images import normalise, square

# The inference server's task name for these models (the API's PredictionService sends it).
TASK = "trained-image-classification"
TOP_K = 5


@dataclass
class Loaded:
    model: backbones.Classifier
    labels: list[str]
    size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    lock: threading.Lock


def decode(item: Any, index: int) -> Image.Image:
    """An input `{"image": base64}` as a PIL image, its size checked before its pixels are decoded."""
    data = item.get("image") if isinstance(item, dict) else None
    if not isinstance(data, str) or not data:
        raise InvalidInput(f"inputs[{index}] must be an object with 'image' (base64)")
    if len(data) > spec.MAX_PREDICT_IMAGE_BYTES * 4 // 3 + 4:
        raise InvalidInput(f"inputs[{index}]: the image exceeds {spec.MAX_PREDICT_IMAGE_BYTES} bytes")
    try:
        raw = base64.b64decode(data.split(",", 1)[-1] if data.startswith("data:") else data, validate=True)
        image = Image.open(io.BytesIO(raw))
    except (binascii.Error, ValueError):
        raise InvalidInput(f"inputs[{index}]: 'image' is not valid base64") from None
    except Image.DecompressionBombError:  # PIL's own bound, far above ours
        raise InvalidInput(
            f"inputs[{index}]: the image is too large; at most {spec.MAX_PREDICT_PIXELS} pixels are accepted"
        ) from None
    except (UnidentifiedImageError, OSError):
        raise InvalidInput(
            f"inputs[{index}]: not an image PIL can read (png, jpeg, gif, bmp, webp)"
        ) from None
    width, height = image.size
    if width * height > spec.MAX_PREDICT_PIXELS:
        raise InvalidInput(
            f"inputs[{index}]: the image is {width}x{height}; at most {spec.MAX_PREDICT_PIXELS} pixels are accepted"
        )
    return image


class TrainedImageClassifiers:
    def __init__(self, storage: Callable[[], ObjectStorage], cache_dir: Path, *, max_loaded: int = 4) -> None:
        self._storage = storage
        self._cache_dir = cache_dir
        self._max_loaded = max_loaded
        self._loaded: OrderedDict[str, Loaded] = OrderedDict()
        self._guard = threading.Lock()
        self._loading = threading.Lock()  # one load at a time: loads are memory-heavy

    async def run(self, source: Any, inputs: list[Any]) -> list[dict[str, Any]]:
        if not isinstance(source, Mapping) or not isinstance(source.get("descriptor"), str):
            raise InvalidInput("'source' must name the model's 'descriptor'")
        return await asyncio.to_thread(self.predict, str(source["descriptor"]), inputs)

    def predict(self, descriptor: str, inputs: list[Any]) -> list[dict[str, Any]]:
        pictures = [decode(item, i) for i, item in enumerate(inputs)]  # all checked before any work
        loaded = self.load(descriptor)
        try:
            batch = torch.stack([square(p, loaded.size) for p in pictures])
        except (OSError, ValueError, Image.DecompressionBombError) as e:
            raise InvalidInput(f"An image could not be decoded: {e}") from None
        finally:
            for picture in pictures:
                picture.close()
        with loaded.lock, torch.no_grad():
            device = next(loaded.model.parameters()).device
            probabilities = torch.softmax(
                loaded.model(normalise(batch.to(device), loaded.mean, loaded.std)).float(), dim=1
            ).cpu()
        outputs = []
        for row in probabilities.tolist():
            ranked = sorted(range(len(row)), key=lambda i: -row[i])
            outputs.append(
                {
                    "class": loaded.labels[ranked[0]],
                    "confidence": row[ranked[0]],
                    "top": [{"class": loaded.labels[i], "confidence": row[i]} for i in ranked[:TOP_K]],
                }
            )
        return outputs

    def load(self, descriptor: str) -> Loaded:
        with self._guard:
            if descriptor in self._loaded:
                self._loaded.move_to_end(descriptor)
                return self._loaded[descriptor]
        with self._loading:
            with self._guard:
                if descriptor in self._loaded:
                    return self._loaded[descriptor]
            loaded = self._read(descriptor)
            with self._guard:
                self._loaded[descriptor] = loaded
                while len(self._loaded) > self._max_loaded:
                    self._loaded.popitem(last=False)
            return loaded

    def _read(self, descriptor: str) -> Loaded:
        storage = self._storage()
        try:
            doc = json.loads(asyncio.run(storage.get_bytes(descriptor)))
            if doc.get("format") != spec.IMAGE_MODEL_FORMAT:
                raise ModelUnavailable(f"'{descriptor}' is not a {spec.IMAGE_MODEL_FORMAT} model")
            labels, size = [str(label) for label in doc["labels"]], int(doc["image_size"])
            target = self._cache_dir / "trained-images" / descriptor.replace("/", "_")
            if doc.get("files"):  # a fine-tuned Hub checkpoint
                for name in doc["files"]:
                    if ".." in str(name).split("/"):
                        raise ModelUnavailable(f"'{descriptor}' names an unsafe file: {name}")
                    path = target / str(name)
                    path.parent.mkdir(parents=True, exist_ok=True)
                    asyncio.run(storage.download_to(f"{doc['weights']}/{name}", path))
                built = backbones.build_hub(target, labels, fine_tuned=True)
            else:
                built = backbones.build_lite0(len(labels), size, pretrained=False)
                target.mkdir(parents=True, exist_ok=True)
                asyncio.run(storage.download_to(doc["weights"], target / "model.pt"))
                built.model.net.load_state_dict(
                    torch.load(target / "model.pt", map_location="cpu", weights_only=True)
                )
        except DomainError as e:
            raise ModelUnavailable(f"The model's files could not be read: {e.message}") from e
        except (KeyError, ValueError, RuntimeError, OSError) as e:
            raise ModelUnavailable(f"The model could not be loaded: {e}") from e
        model = built.model.eval()
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        model.to(device)
        mean = tuple(float(v) for v in doc.get("mean") or built.mean)
        std = tuple(float(v) for v in doc.get("std") or built.std)
        return Loaded(model, labels, size, mean, std, threading.Lock())
