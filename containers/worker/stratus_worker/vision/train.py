"""The `image_training` kind: transfer learning on a ZIP of one folder per class.

Steps: validate params; download and decode the images (those that do not decode are skipped and
counted, and above `MAX_CORRUPT_FRACTION` the job fails); split each class (seeded); load the
backbone with a new head and freeze it (optionally unfreezing its last blocks); train with flips and
crops, validation each epoch, early stopping, checkpoints and progress (see `loop`); score the held-out
split (macro precision, recall, F1, the confusion matrix); save the model and its descriptor, which the
inference worker loads (`stratus_worker.vision.serve`).
"""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stratus.capabilities.training import images as spec
from stratus.errors import NotFound
from stratus_worker.metrics import classification_metrics
from stratus_worker.params import EarlyStopping, Hyperparameters
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import download, upload_file, upload_json
from stratus_worker.vision import backbones
from stratus_worker.vision.images import Decoded, decode_zip, stratified_split
from stratus_worker.vision.loop import Fit, ImageTrainer, Split


class ImageHyperparameters(Hyperparameters):
    batch_size: int = Field(default=32, ge=1, le=4096)
    image_size: int = Field(default=spec.DEFAULT_IMAGE_SIZE, ge=spec.MIN_IMAGE_SIZE, le=spec.MAX_IMAGE_SIZE)
    unfreeze_blocks: int = Field(default=0, ge=0, le=32)
    augment: bool = True


class ImageParams(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    dataset_key: str = Field(min_length=1)
    backbone: str = spec.SHIPPED_BACKBONE
    backbone_source: dict[str, Any] | None = None  # a Hub backbone's stored snapshot
    model_type: str = spec.SHIPPED_BACKBONE
    hyperparameters: ImageHyperparameters = ImageHyperparameters()
    validation_split: float = Field(default=0.2, gt=0, le=0.5)
    early_stopping: EarlyStopping = EarlyStopping()
    seed: int = Field(default=42, ge=0, lt=2**32)


def parse(raw: dict[str, Any]) -> ImageParams:
    try:
        return ImageParams.model_validate(
            {k: v for k, v in raw.items() if not (k in ("hyperparameters", "early_stopping") and v is None)}
        )
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or 'params'}: {error['msg']}" for error in e.errors()
        )
        raise JobFailed(f"Invalid training parameters: {problems}") from None


def run(ctx: JobContext) -> Outcome:
    params = parse(ctx.params)
    hp = params.hyperparameters
    ctx.events.progress(
        "loading", epoch=0, total_epochs=hp.epochs, step=0, total_steps=0, progress=0.0, metrics={}
    )
    data = load(ctx, params)
    train_idx, val_idx = stratified_split(data.targets.tolist(), params.validation_split, params.seed)
    if ctx.should_stop:
        raise JobStopped()
    torch.manual_seed(params.seed)
    built = build(ctx, params, data.labels)
    built.model.freeze(hp.unfreeze_blocks)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    built.model.to(device)
    split = Split(
        data.images[train_idx], data.targets[train_idx], data.images[val_idx], data.targets[val_idx]
    )
    trainer = ImageTrainer(ctx, params, built, split, data.labels)
    fit = trainer.fit()
    ctx.events.progress(
        "saving",
        epoch=fit.epochs_run,
        total_epochs=hp.epochs,
        step=trainer.step,
        total_steps=fit.total_steps,
        progress=100.0,
        metrics=trainer.last_metrics,
    )
    final_metrics = evaluate(trainer, split, data, fit)
    trainer.save_checkpoint(upload=True)
    artifacts, size = save(ctx, params, built, data.labels)
    upload_json(
        ctx.storage,
        artifacts["metrics"],
        {"job_id": ctx.job_id, "final_metrics": final_metrics, "history": fit.history},
    )
    artifacts["checkpoint"] = trainer.checkpoint_key
    model = built.model
    description = {
        "objective": spec.IMAGE_OBJECTIVE,
        "model_type": params.model_type,
        "architecture": {
            "backbone": params.backbone,
            "class": built.architecture,
            "input_shape": [hp.image_size, hp.image_size, 3],
            "output_classes": len(data.labels),
            "parameters": sum(p.numel() for p in model.parameters()),
            "trainable_parameters": sum(p.numel() for p in model.trainable()),
            "unfrozen_blocks": hp.unfreeze_blocks,
        },
        "labels": data.labels,
        "target": "label",
        "size_mb": round(size / 1_000_000, 6),
    }
    return Outcome(final_metrics, fit.history, {}, artifacts, description)


def load(ctx: JobContext, params: ImageParams) -> Decoded:
    path = ctx.workdir / "dataset.zip"
    try:
        download(ctx.storage, params.dataset_key, path)
    except NotFound:
        raise JobFailed(f"Dataset object '{params.dataset_key}' not found in storage") from None
    try:
        with zipfile.ZipFile(path) as archive:
            data = decode_zip(archive, params.hyperparameters.image_size)
    except zipfile.BadZipFile as e:
        raise JobFailed(f"The dataset is not a readable ZIP archive: {e}") from None
    finally:
        path.unlink(missing_ok=True)
    total = len(data.targets) + len(data.skipped)
    if total and len(data.skipped) / total > spec.MAX_CORRUPT_FRACTION:
        shown = ", ".join(data.skipped[:5]) + (" ..." if len(data.skipped) > 5 else "")
        raise JobFailed(
            f"{len(data.skipped)} of {total} images could not be decoded (more than "
            f"{spec.MAX_CORRUPT_FRACTION:.0%}): {shown}"
        )
    counts = torch.bincount(data.targets, minlength=len(data.labels)).tolist()
    present = {label: n for label, n in zip(data.labels, counts, strict=True) if n}
    if len(present) < spec.MIN_CLASSES:
        raise JobFailed(
            f"Image classification needs at least {spec.MIN_CLASSES} classes with images; found "
            f"{len(present)}: {', '.join(present) or 'none'}"
        )
    small = [
        f"'{label}' ({n})"
        for label, n in zip(data.labels, counts, strict=True)
        if n < spec.MIN_IMAGES_PER_CLASS
    ]
    if small:
        raise JobFailed(
            f"Each class needs at least {spec.MIN_IMAGES_PER_CLASS} readable images; too few in {', '.join(small)}"
        )
    return data


def build(ctx: JobContext, params: ImageParams, labels: list[str]) -> backbones.Built:
    """The backbone with a new head; a Hub backbone's files are copied from storage first."""
    size = params.hyperparameters.image_size
    if params.backbone_source is None:
        if params.backbone != spec.SHIPPED_BACKBONE:
            raise JobFailed(
                f"Backbone '{params.backbone}' needs its downloaded snapshot; only "
                f"'{spec.SHIPPED_BACKBONE}' ships with the worker"
            )
        return backbones.build_lite0(len(labels), size)
    source = params.backbone_source
    snapshot = str(source.get("snapshot") or "").rstrip("/")
    files = [str(f) for f in source.get("files") or []]
    if not snapshot or not files or any(".." in f.split("/") for f in files):
        raise JobFailed(f"Backbone '{params.backbone}' has no usable downloaded snapshot")
    local = ctx.workdir / "backbone"
    try:
        for name in files:
            download(ctx.storage, f"{snapshot}/{name}", local / name)
    except NotFound as e:
        raise JobFailed(f"Backbone '{params.backbone}' is missing files in storage: {e.message}") from None
    try:
        return backbones.build_hub(local, labels)
    except (OSError, ValueError) as e:
        raise JobFailed(
            f"Backbone '{params.backbone}' could not be loaded as an image classifier: {e}"
        ) from None


def evaluate(trainer: ImageTrainer, split: Split, data: Decoded, fit: Fit) -> dict[str, Any]:
    """Held-out figures of the final weights, the confusion matrix, and the training split's loss."""
    val_logits = trainer.logits(split.x_val)
    train_logits = trainer.logits(split.x_train)
    predicted = val_logits.argmax(dim=1).tolist()
    actual = split.y_val.tolist()
    metrics = classification_metrics(actual, predicted)
    n = len(data.labels)
    matrix = [[0] * n for _ in range(n)]
    for t, p in zip(actual, predicted, strict=True):
        matrix[t][p] += 1
    loss_fn = torch.nn.CrossEntropyLoss()
    return {
        **metrics,
        "val_accuracy": metrics["accuracy"],
        "val_loss": float(loss_fn(val_logits, split.y_val)),
        "train_loss": float(loss_fn(train_logits, split.y_train)),
        "train_accuracy": float((train_logits.argmax(dim=1) == split.y_train).float().mean()),
        "confusion_matrix": {"labels": data.labels, "matrix": matrix},
        "best_epoch": fit.best_epoch,
        "epochs_trained": fit.epochs_run,
        "stopped_early": fit.stopped_early,
        "train_images": len(split.y_train),
        "validation_images": len(split.y_val),
        "images_skipped": len(data.skipped),
    }


def save(
    ctx: JobContext, params: ImageParams, built: backbones.Built, labels: list[str]
) -> tuple[dict[str, str], int]:
    """The weights and the descriptor the inference worker reads; (artifacts, bytes stored)."""
    model = built.model
    descriptor: dict[str, Any] = {
        "format": spec.IMAGE_MODEL_FORMAT,
        "backbone": params.backbone,
        "architecture": built.architecture,
        "labels": labels,
        "image_size": params.hyperparameters.image_size,
        "mean": list(built.mean),
        "std": list(built.std),
    }
    size = 0
    if model.hub:
        # A Hub model is saved as a checkpoint its own class reloads (config with the new labels).
        with tempfile.TemporaryDirectory(dir=ctx.workdir) as tmp:
            model.net.save_pretrained(tmp)  # type: ignore[operator]
            files = sorted(p for p in Path(tmp).rglob("*") if p.is_file())
            for path in files:
                name = path.relative_to(tmp).as_posix()
                upload_file(ctx.storage, ctx.artifact_key(f"model/{name}"), path, "application/octet-stream")
                size += path.stat().st_size
            descriptor["files"] = [p.relative_to(tmp).as_posix() for p in files]
            descriptor["weights"] = ctx.artifact_key("model")
    else:
        path = ctx.workdir / "model.pt"
        torch.save({k: v.detach().cpu() for k, v in model.net.state_dict().items()}, path)
        upload_file(ctx.storage, ctx.artifact_key("model.pt"), path, "application/octet-stream")
        size += path.stat().st_size
        descriptor["weights"] = ctx.artifact_key("model.pt")
    artifacts = {"model": ctx.artifact_key("model.json"), "weights": descriptor["weights"]}
    artifacts["metrics"] = ctx.artifact_key("metrics.json")
    size += upload_json(ctx.storage, artifacts["model"], descriptor)
    return artifacts, size
