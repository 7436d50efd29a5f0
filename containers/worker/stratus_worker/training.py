"""The training loop: shuffled mini-batches, validation each epoch, early stopping, checkpoints,
progress events, and a clean stop on SIGTERM.

Progress goes out at the end of every epoch and whenever it enters another 10% band (so a long epoch
still reports). The checkpoint is written locally every epoch, but uploaded at most once a minute,
on a stop and at the end: uploads of a large checkpoint would otherwise dominate short epochs.
"""

from __future__ import annotations

import copy
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from stratus_worker.events import ProgressGate
from stratus_worker.model import make_optimizer
from stratus_worker.params import EarlyStopping, Task, TrainingParams
from stratus_worker.predict import forward
from stratus_worker.preprocess import Prepared
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import upload_file

CHECKPOINT_UPLOAD_INTERVAL_S = 60.0
CHECKPOINT_FORMAT = "stratus-checkpoint/1"


@dataclass
class Fit:
    epochs_run: int
    best_epoch: int
    stopped_early: bool
    total_steps: int
    history: dict[str, list[float]] = field(default_factory=dict)


class Trainer:
    def __init__(
        self, ctx: JobContext, params: TrainingParams, model: nn.Module, data: Prepared, task: Task
    ) -> None:
        hp = params.hyperparameters
        self.ctx, self.params, self.model, self.data, self.task = ctx, params, model, data, task
        self.device = next(model.parameters()).device
        self.optimizer = make_optimizer(hp.optimizer, model.parameters(), hp.learning_rate, hp.weight_decay)
        self.loss_fn: nn.Module = nn.CrossEntropyLoss() if task == "classification" else nn.MSELoss()
        quality = "val_accuracy" if task == "classification" else "val_rmse"
        train_only = ["accuracy"] if task == "classification" else []
        self.history: dict[str, list[float]] = {
            name: [] for name in ["loss", "val_loss", *train_only, quality]
        }
        self.last_metrics: dict[str, float | None] = {}
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps taken
        self.checkpoint_path = ctx.workdir / "checkpoint.pt"
        self.checkpoint_key = ctx.artifact_key("checkpoint.pt")
        self._uploaded_at = time.monotonic()

    def fit(self) -> Fit:
        hp = self.params.hyperparameters
        n = len(self.data.x_train)
        batch = min(hp.batch_size, n)
        total = hp.epochs * math.ceil(n / batch)
        x, y = self.data.x_train.to(self.device), self.data.y_train.to(self.device)
        generator = torch.Generator().manual_seed(self.params.seed)
        gate = ProgressGate()
        gate.crossed(0.0)
        best = _Best(self.params.early_stopping)
        for epoch in range(1, hp.epochs + 1):
            order = torch.randperm(n, generator=generator).to(self.device)
            metrics = {**self._epoch(epoch, x[order], y[order], batch, total, gate), **self.validate()}
            if not math.isfinite(_value(metrics["loss"])):
                raise JobFailed(
                    f"Training diverged (the loss is not finite at epoch {epoch}); try a lower learning_rate",
                    Outcome(history=self.history),
                )
            for name, values in self.history.items():
                values.append(_value(metrics[name]))
            self.epoch = epoch
            gate.crossed(100.0 * self.step / total)
            self._progress(epoch, total, 100.0 * self.step / total, metrics)
            self.save_checkpoint()
            patience_ran_out = best.update(epoch, metrics, self.model)
            if self.ctx.should_stop:
                self._stop()
            if patience_ran_out:
                break
        if best.state is not None:
            self.model.load_state_dict(best.state)  # early stopping keeps the best epoch's weights
        return Fit(
            self.epoch,
            best.epoch if best.state is not None else self.epoch,
            best.ran_out,
            total,
            self.history,
        )

    def _epoch(
        self, epoch: int, x: torch.Tensor, y: torch.Tensor, batch: int, total: int, gate: ProgressGate
    ) -> dict[str, float | None]:
        """One pass over the (shuffled) training split; its running loss (and accuracy)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)  # summed on the device: no sync per step
        correct = torch.zeros((), device=self.device)
        seen = 0
        for start in range(0, len(x), batch):
            xb, yb = x[start : start + batch], y[start : start + batch]
            outputs = self.model(xb)
            loss = self.loss_fn(outputs, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            seen += len(xb)
            loss_sum += loss.detach() * len(xb)
            if self.task == "classification":
                correct += (outputs.detach().argmax(dim=1) == yb).sum()
            if self.ctx.should_stop:
                self._stop()
            progress = 100.0 * self.step / total
            if gate.crossed(progress) and start + batch < len(x):
                self._progress(epoch, total, progress, self._train_metrics(loss_sum, correct, seen))
        return self._train_metrics(loss_sum, correct, seen)

    def validate(self) -> dict[str, float | None]:
        outputs = forward(self.model, self.data.x_val)
        target = self.data.y_val.to(outputs.device)
        metrics: dict[str, float | None] = {"val_loss": float(self.loss_fn(outputs, target))}
        if self.task == "classification":
            metrics["val_accuracy"] = float((outputs.argmax(dim=1) == target).float().mean())
        else:
            metrics["val_rmse"] = float(torch.sqrt(((outputs - target) ** 2).mean())) * self.data.target_std
        return metrics

    def save_checkpoint(self, *, upload: bool = False) -> None:
        """Write the checkpoint locally (atomically); upload it when asked or when the last upload is
        older than CHECKPOINT_UPLOAD_INTERVAL_S."""
        state: dict[str, Any] = {
            "format": CHECKPOINT_FORMAT,
            "epoch": self.epoch,
            "step": self.step,
            "model_state": {name: t.detach().cpu() for name, t in self.model.state_dict().items()},
            "optimizer_state": self.optimizer.state_dict(),
            "history": self.history,
            "preprocessing": self.data.preprocessing,
            "labels": self.data.labels,
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

    def _train_metrics(
        self, loss_sum: torch.Tensor, correct: torch.Tensor, seen: int
    ) -> dict[str, float | None]:
        metrics: dict[str, float | None] = {"loss": float(loss_sum) / max(seen, 1)}
        if self.task == "classification":
            metrics["accuracy"] = float(correct) / max(seen, 1)
        return metrics

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


class _Best:
    """Early stopping's bookkeeping: the best score of the monitored metric, its epoch and weights."""

    def __init__(self, stopping: EarlyStopping) -> None:
        self.stopping = stopping
        self.score = math.inf  # lower is better: val_accuracy is negated
        self.epoch = 0
        self.waited = 0
        self.ran_out = False
        self.state: dict[str, Any] | None = None

    def update(self, epoch: int, metrics: dict[str, float | None], model: nn.Module) -> bool:
        """Record an epoch; True when early stopping is on and its patience has run out."""
        score = _value(metrics[self.stopping.monitor])
        score = -score if self.stopping.monitor == "val_accuracy" else score
        if score < self.score - self.stopping.min_delta:
            self.score, self.epoch, self.waited = score, epoch, 0
            if self.stopping.enabled:
                self.state = copy.deepcopy(model.state_dict())
        else:
            self.waited += 1
        self.ran_out = self.stopping.enabled and self.waited >= self.stopping.patience
        return self.ran_out


def _value(metric: float | None) -> float:
    return math.nan if metric is None else metric
