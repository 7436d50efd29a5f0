"""The image training loop: shuffled mini-batches with augmentation, validation each epoch, early
stopping, checkpoints, progress every epoch and every 10%, and a clean stop on SIGTERM.

Only the trainable parameters (the head, and any unfrozen blocks) are optimised, checkpointed and kept
for early stopping: the frozen backbone is the pretrained one and is not copied around every epoch.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from stratus_worker.events import ProgressGate
from stratus_worker.model import make_optimizer
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import upload_file
from stratus_worker.training import CHECKPOINT_UPLOAD_INTERVAL_S
from stratus_worker.vision.backbones import Built
from stratus_worker.vision.images import augment, normalise

if TYPE_CHECKING:
    from stratus_worker.vision.train import ImageParams

CHECKPOINT_FORMAT = "stratus-image-checkpoint/1"
EVAL_BATCH = 64


@dataclass
class Split:
    x_train: torch.Tensor  # uint8 (n, 3, s, s)
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


@dataclass
class Fit:
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    total_steps: int
    history: dict[str, list[float]] = field(default_factory=dict)


class ImageTrainer:
    def __init__(
        self, ctx: JobContext, params: ImageParams, built: Built, split: Split, labels: list[str]
    ) -> None:
        hp = params.hyperparameters
        self.ctx, self.params, self.built, self.split, self.labels = ctx, params, built, split, labels
        self.model = built.model
        self.device = next(self.model.parameters()).device
        self.optimizer = make_optimizer(
            hp.optimizer, self.model.trainable(), hp.learning_rate, hp.weight_decay
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.history: dict[str, list[float]] = {
            k: [] for k in ("loss", "accuracy", "val_loss", "val_accuracy")
        }
        self.last_metrics: dict[str, float | None] = {}
        self.epoch = 0
        self.step = 0
        self.checkpoint_path = ctx.workdir / "checkpoint.pt"
        self.checkpoint_key = ctx.artifact_key("checkpoint.pt")
        self._uploaded_at = time.monotonic()
        self._generator = torch.Generator().manual_seed(params.seed)

    def _inputs(self, batch: torch.Tensor, *, train: bool) -> torch.Tensor:
        x = normalise(batch.to(self.device, non_blocking=True), self.built.mean, self.built.std)
        if train and self.params.hyperparameters.augment:
            x = augment(x, self._generator)
        return x

    def fit(self) -> Fit:
        hp = self.params.hyperparameters
        n = len(self.split.y_train)
        batch = min(hp.batch_size, n)
        total = hp.epochs * math.ceil(n / batch)
        gate = ProgressGate()
        gate.crossed(0.0)
        stopping = self.params.early_stopping
        best_score, best_epoch, waited, ran_out = math.inf, 0, 0, False
        best_state: dict[str, torch.Tensor] | None = None
        for epoch in range(1, hp.epochs + 1):
            order = torch.randperm(n, generator=self._generator)
            metrics = {**self._epoch(epoch, order, batch, total, gate), **self.validate()}
            if not math.isfinite(float(metrics["loss"] or math.nan)):
                raise JobFailed(
                    f"Training diverged (the loss is not finite at epoch {epoch}); try a lower learning_rate",
                    Outcome(history=self.history),
                )
            for name, values in self.history.items():
                values.append(float(metrics[name] or 0.0))
            self.epoch = epoch
            self._progress(epoch, total, 100.0 * self.step / total, metrics)
            gate.crossed(100.0 * self.step / total)
            self.save_checkpoint()
            score = float(metrics[stopping.monitor] or math.nan)
            score = -score if stopping.monitor == "val_accuracy" else score
            if score < best_score - stopping.min_delta:
                best_score, best_epoch, waited = score, epoch, 0
                if stopping.enabled:
                    best_state = self._trainable_state()
            else:
                waited += 1
            if self.ctx.should_stop:
                self._stop()
            if stopping.enabled and waited >= stopping.patience:
                ran_out = True
                break
        if best_state is not None:
            self.model.load_state_dict(best_state, strict=False)  # the best epoch's trainable weights
        return Fit(
            self.epoch, best_epoch if best_state is not None else self.epoch, ran_out, total, self.history
        )

    def _epoch(
        self, epoch: int, order: torch.Tensor, batch: int, total: int, gate: ProgressGate
    ) -> dict[str, float | None]:
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device)
        seen = 0
        for start in range(0, len(order), batch):
            index = order[start : start + batch]
            x = self._inputs(self.split.x_train[index], train=True)
            y = self.split.y_train[index].to(self.device)
            outputs = self.model(x)
            loss = self.loss_fn(outputs, y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            seen += len(y)
            loss_sum += loss.detach() * len(y)
            correct += (outputs.detach().argmax(dim=1) == y).sum()
            if self.ctx.should_stop:
                self._stop()
            progress = 100.0 * self.step / total
            if gate.crossed(progress) and start + batch < len(order):
                self._progress(epoch, total, progress, _train_metrics(loss_sum, correct, seen))
        return _train_metrics(loss_sum, correct, seen)

    def logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's outputs for uint8 images, in eval mode, in bounded batches, on the CPU."""
        was_training = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                parts = [
                    self.model(self._inputs(images[i : i + EVAL_BATCH], train=False)).float().cpu()
                    for i in range(0, len(images), EVAL_BATCH)
                ]
        finally:
            self.model.train(was_training)
        return torch.cat(parts) if parts else torch.empty((0, len(self.labels)))

    def validate(self) -> dict[str, float | None]:
        outputs = self.logits(self.split.x_val)
        return {
            "val_loss": float(self.loss_fn(outputs, self.split.y_val)),
            "val_accuracy": float((outputs.argmax(dim=1) == self.split.y_val).float().mean()),
        }

    def _trainable_state(self) -> dict[str, torch.Tensor]:
        trainable = {id(p) for p in self.model.trainable()}
        # Batch-norm running statistics of unfrozen blocks are buffers: kept with their block's weights.
        names = {n.rsplit(".", 1)[0] for n, p in self.model.named_parameters() if id(p) in trainable}
        return {
            k: v.detach().clone() for k, v in self.model.state_dict().items() if k.rsplit(".", 1)[0] in names
        }

    def save_checkpoint(self, *, upload: bool = False) -> None:
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "backbone": self.params.backbone,
            "trainable_state": {k: v.cpu() for k, v in self._trainable_state().items()},
            "optimizer_state": self.optimizer.state_dict(),
            "history": self.history,
            "labels": self.labels,
            "params": self.params.model_dump(),
        }
        partial = self.checkpoint_path.with_suffix(".tmp")
        torch.save(state, partial)
        os.replace(partial, self.checkpoint_path)
        if upload or time.monotonic() - self._uploaded_at >= CHECKPOINT_UPLOAD_INTERVAL_S:
            upload_file(
                self.ctx.storage, self.checkpoint_key, self.checkpoint_path, "application/octet-stream"
            )
            self._uploaded_at = time.monotonic()

    def _stop(self) -> None:
        self.save_checkpoint(upload=True)
        raise JobStopped(Outcome(history=self.history, artifacts={"checkpoint": self.checkpoint_key}))

    def _progress(self, epoch: int, total: int, progress: float, metrics: dict[str, float | None]) -> None:
        self.last_metrics = {
            **{
                name: values[-1]
                for name, values in self.history.items()
                if values and name.startswith("val_")
            },
            **metrics,
            "learning_rate": float(self.optimizer.param_groups[0]["lr"]),
        }
        self.ctx.events.progress(
            "training",
            epoch=epoch,
            total_epochs=self.params.hyperparameters.epochs,
            step=self.step,
            total_steps=total,
            progress=progress,
            metrics=self.last_metrics,
        )


def _train_metrics(loss_sum: torch.Tensor, correct: torch.Tensor, seen: int) -> dict[str, float | None]:
    return {"loss": float(loss_sum) / max(seen, 1), "accuracy": float(correct) / max(seen, 1)}
