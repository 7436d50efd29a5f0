"""Training requests on image datasets (a ZIP of one folder per class): the checks a request can fail
before a job exists (classes, images per class, the backbone), and the `image_training` job it becomes."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from stratus.capabilities.training import images
from stratus.capabilities.training.schemas import TrainingStart
from stratus.db.repositories.models import ModelRepository
from stratus.errors import Conflict, ValidationFailed


def check_classes(dataset: dict[str, Any]) -> dict[str, int]:
    """The dataset's images per class; 422 for one class, too many classes, or a class too small."""
    classes = {c["label"]: int(c["count"]) for c in (dataset.get("metadata") or {}).get("classes") or []}
    if len(classes) < images.MIN_CLASSES:
        raise ValidationFailed(
            f"Image classification needs at least {images.MIN_CLASSES} classes (one folder per class); "
            f"this dataset has {len(classes)}: {', '.join(classes) or 'none'}",
            code="TOO_FEW_CLASSES",
            details=[{"field": "dataset_id", "message": f"has {len(classes)} class(es)"}],
        )
    if len(classes) > images.MAX_CLASSES:
        raise ValidationFailed(
            f"At most {images.MAX_CLASSES} classes are supported; this dataset has {len(classes)}",
            code="TOO_MANY_CLASSES",
            details=[{"field": "dataset_id", "message": f"has {len(classes)} classes"}],
        )
    small = {label: n for label, n in classes.items() if n < images.MIN_IMAGES_PER_CLASS}
    if small:
        listed = ", ".join(f"'{label}' ({n})" for label, n in sorted(small.items()))
        raise ValidationFailed(
            f"Each class needs at least {images.MIN_IMAGES_PER_CLASS} images; too few in {listed}",
            code="CLASS_TOO_SMALL",
            details=[{"field": "dataset_id", "message": f"too few images in {listed}"}],
        )
    return classes


async def backbone_for(
    user_id: ObjectId, names: list[str | None], models: ModelRepository | None
) -> tuple[images.Backbone, dict[str, Any] | None]:
    """The backbone the request names (the first of `names` that is a backbone name, a preference-less
    name meaning the shipped one), and for a Hub backbone the snapshot of the user's download of it."""
    wanted = next((n for n in names if n and n not in images.GENERIC_TYPES), images.SHIPPED_BACKBONE)
    backbone = images.BACKBONES.get(wanted.lower())
    if backbone is None and "/" in wanted:  # any downloaded AutoModelForImageClassification checkpoint
        backbone = images.Backbone(wanted, wanted)
    if backbone is None:
        raise ValidationFailed(
            f"Unknown image backbone '{wanted}'; choose one of: {images.backbone_choices()} "
            "(or the id of an image classification model you downloaded)",
            code="UNKNOWN_BACKBONE",
            details=[{"field": "model_type", "message": f"choose one of: {images.backbone_choices()}"}],
        )
    if backbone.hub_id is None:
        return backbone, None
    record = None if models is None else await models.find_named(user_id, backbone.hub_id, source="hub")
    if record is None or record.get("status") != "ready":
        raise Conflict(
            f"Backbone '{backbone.name}' comes from the Hugging Face Hub as '{backbone.hub_id}': download it "
            f'first (POST /models/download {{"model_name": "{backbone.hub_id}"}}), or train from the '
            f"shipped '{images.SHIPPED_BACKBONE}'",
            code="BACKBONE_NOT_DOWNLOADED",
        )
    architecture = str((record.get("architecture") or {}).get("class") or "")
    if not architecture.endswith("ForImageClassification"):
        raise ValidationFailed(
            f"Model '{record['name']}' is a {architecture or 'model of unknown architecture'}, not an image "
            "classification checkpoint (AutoModelForImageClassification)",
            code="NOT_AN_IMAGE_BACKBONE",
            details=[{"field": "model_type", "message": "not an image classification checkpoint"}],
        )
    return backbone, {
        "snapshot": (record.get("artifacts") or {}).get("snapshot"),
        "files": list(record.get("files") or []),
        "architecture": (record.get("architecture") or {}).get("class"),
        "revision": record.get("revision"),
    }


def image_job(
    user_id: ObjectId,
    dataset: dict[str, Any],
    request: TrainingStart,
    backbone: images.Backbone,
    source: dict[str, Any] | None,
) -> dict[str, Any]:
    """The job document of an `image_training` run."""
    hp = request.hyperparameters
    params = {
        "dataset_key": dataset["object_key"],
        "dataset_format": dataset["format"],
        "backbone": backbone.name,
        "backbone_source": source,
        "model_type": request.model_type,
        "hyperparameters": hp.model_dump(),
        "validation_split": request.validation_split,
        "early_stopping": request.early_stopping.model_dump(),
        "seed": request.seed,
    }
    count = int(dataset.get("row_count") or 0)
    model_type = backbone.name if request.model_type in images.GENERIC_TYPES else request.model_type
    return {
        "user_id": user_id,
        "kind": images.IMAGE_TRAINING,
        "dataset_id": dataset["_id"],
        "model_type": model_type,
        "model_name": request.name or f"{model_type} on {dataset['name']}",
        "objective": images.IMAGE_OBJECTIVE,
        "target": "label",
        "params": params,
        "progress": 0.0,
        "current_epoch": 0,
        "total_epochs": hp.epochs,
        "metrics": {},
        # A CPU does about 20 images/s at 224 px through a frozen backbone; a GPU far more.
        "estimated_time": max(30, count * hp.epochs // 20),
    }
