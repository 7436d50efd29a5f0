"""The training loop, one for every training kind (tables here, images in `vision.loop`): shuffled
mini-batches, validation each epoch, early stopping, checkpoints, progress events, and a clean stop on
SIGTERM.

Progress goes out at the end of every epoch and whenever it enters another 10% band (so a long epoch
still reports). The checkpoint is written locally every epoch, but uploaded at most once a minute,
on a stop and at the end: uploads of a large checkpoint would otherwise dominate short epochs.
"""

from __future__ import annotations

import abc
import copy
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

import torch
from torch import nn

from stratus_worker.events import ProgressGate
from stratus_worker.model import make_optimizer
from stratus_worker.params import EarlyStopping, Hyperparameters, Objective, TrainingParams
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


class LoopParams(Protocol):
    """What the loop reads of a kind's parameters (tabular `TrainingParams`, vision `ImageParams`)."""

    @property
    def hyperparameters(self) -> Hyperparameters: ...
    @property
    def early_stopping(self) -> EarlyStopping: ...
    @property
    def seed(self) -> int: ...
    def model_dump(self) -> dict[str, Any]: ...


P = TypeVar("P", bound=LoopParams)


class EpochTrainer(abc.ABC, Generic[P]):
    """The loop every training kind runs; a kind supplies its batches (`_batch`), its held-out pass
    (`validate`), what early stopping keeps (`_snapshot`/`_restore`) and its checkpoint's own part."""

    checkpoint_format = CHECKPOINT_FORMAT

    def __init__(
        self,
        ctx: JobContext,
        params: P,
        model: nn.Module,
        trainable: Iterable[nn.Parameter],
        *,
        classification: bool,
    ) -> None:
        hp = params.hyperparameters
        self.ctx, self.params, self.model, self.classification = ctx, params, model, classification
        self.device = next(model.parameters()).device
        self.optimizer = make_optimizer(hp.optimizer, trainable, hp.learning_rate, hp.weight_decay)
        self.loss_fn: nn.Module = nn.CrossEntropyLoss() if classification else nn.MSELoss()
        quality = "val_accuracy" if classification else "val_rmse"
        train_only = ["accuracy"] if classification else []
        self.history: dict[str, list[float]] = {
            name: [] for name in ["loss", *train_only, "val_loss", quality]
        }
        self.last_metrics: dict[str, float | None] = {}
        self.epoch = 0  # completed epochs
        self.step = 0  # optimizer steps taken
        self.checkpoint_path = ctx.workdir / "checkpoint.pt"
        self.checkpoint_key = ctx.artifact_key("checkpoint.pt")
        self._uploaded_at = time.monotonic()
        # Shuffles every epoch (and, for images, draws the augmentations): seeded, so runs repeat.
        self.generator = torch.Generator().manual_seed(params.seed)

    # What a kind supplies.
    @abc.abstractmethod
    def _size(self) -> int:
        """How many training examples there are."""
        ...

    @abc.abstractmethod
    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The inputs and targets of these training examples, on the model's device, ready to train on."""
        ...

    @abc.abstractmethod
    def validate(self) -> dict[str, float | None]: ...

    def _snapshot(self) -> dict[str, Any]:
        """The weights early stopping keeps of the best epoch."""
        return copy.deepcopy(self.model.state_dict())

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state)

    @abc.abstractmethod
    def _checkpoint_state(self) -> dict[str, Any]:
        """The kind's part of the checkpoint (the weights, and what it needs to read them back)."""
        ...

    # The loop.
    def fit(self) -> Fit:
        hp = self.params.hyperparameters
        n = self._size()
        batch = min(hp.batch_size, n)
        total = hp.epochs * math.ceil(n / batch)
        gate = ProgressGate()
        gate.crossed(0.0)
        best = _Best(self.params.early_stopping)
        for epoch in range(1, hp.epochs + 1):
            order = torch.randperm(n, generator=self.generator)
            metrics = {**self._epoch(epoch, order, batch, total, gate), **self.validate()}
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
            patience_ran_out = best.update(epoch, metrics, self._snapshot)
            if self.ctx.should_stop:
                self._stop()
            if patience_ran_out:
                break
        if best.state is not None:
            self._restore(best.state)  # early stopping keeps the best epoch's weights
        return Fit(
            self.epoch,
            best.epoch if best.state is not None else self.epoch,
            best.ran_out,
            total,
            self.history,
        )

    def _epoch(
        self, epoch: int, order: torch.Tensor, batch: int, total: int, gate: ProgressGate
    ) -> dict[str, float | None]:
        """One pass over the training split in this order; its running loss (and accuracy)."""
        self.model.train()
        loss_sum = torch.zeros((), device=self.device)  # summed on the device: no sync per step
        correct = torch.zeros((), device=self.device)
        seen = 0
        for start in range(0, len(order), batch):
            xb, yb = self._batch(order[start : start + batch])
            outputs = self.model(xb)
            loss = self.loss_fn(outputs, yb)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            self.step += 1
            seen += len(yb)
            loss_sum += loss.detach() * len(yb)
            if self.classification:
                correct += (outputs.detach().argmax(dim=1) == yb).sum()
            if self.ctx.should_stop:
                self._stop()
            progress = 100.0 * self.step / total
            if gate.crossed(progress) and start + batch < len(order):
                self._progress(epoch, total, progress, self._train_metrics(loss_sum, correct, seen))
        return self._train_metrics(loss_sum, correct, seen)

    def save_checkpoint(self, *, upload: bool = False) -> None:
        """Write the checkpoint locally (atomically); upload it when asked or when the last upload is
        older than CHECKPOINT_UPLOAD_INTERVAL_S."""
        state: dict[str, Any] = {
            "format": self.checkpoint_format,
            "epoch": self.epoch,
            "step": self.step,
            **self._checkpoint_state(),
            "optimizer_state": self.optimizer.state_dict(),
            "history": self.history,
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
        if self.classification:
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


class Trainer(EpochTrainer[TrainingParams]):
    """The tabular kind: an MLP over the encoded rows, all on the device."""

    def __init__(
        self, ctx: JobContext, params: TrainingParams, model: nn.Module, data: Prepared, objective: Objective
    ) -> None:
        super().__init__(ctx, params, model, model.parameters(), classification=objective == "classification")
        self.data, self.objective = data, objective
        self._x, self._y = data.x_train.to(self.device), data.y_train.to(self.device)

    def _size(self) -> int:
        return len(self.data.x_train)

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = index.to(self.device)
        return self._x[index], self._y[index]

    def validate(self) -> dict[str, float | None]:
        outputs = forward(self.model, self.data.x_val)
        target = self.data.y_val.to(outputs.device)
        metrics: dict[str, float | None] = {"val_loss": float(self.loss_fn(outputs, target))}
        if self.classification:
            metrics["val_accuracy"] = float((outputs.argmax(dim=1) == target).float().mean())
        else:
            metrics["val_rmse"] = float(torch.sqrt(((outputs - target) ** 2).mean())) * self.data.target_std
        return metrics

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "model_state": {name: t.detach().cpu() for name, t in self.model.state_dict().items()},
            "preprocessing": self.data.preprocessing,
            "labels": self.data.labels,
        }


class _Best:
    """Early stopping's bookkeeping: the best score of the monitored metric, its epoch and weights."""

    def __init__(self, stopping: EarlyStopping) -> None:
        self.stopping = stopping
        self.score = math.inf  # lower is better: val_accuracy is negated
        self.epoch = 0
        self.waited = 0
        self.ran_out = False
        self.state: dict[str, Any] | None = None

    def update(
        self, epoch: int, metrics: dict[str, float | None], snapshot: Callable[[], dict[str, Any]]
    ) -> bool:
        """Record an epoch; True when early stopping is on and its patience has run out."""
        score = _value(metrics[self.stopping.monitor])
        score = -score if self.stopping.monitor == "val_accuracy" else score
        if score < self.score - self.stopping.min_delta:
            self.score, self.epoch, self.waited = score, epoch, 0
            if self.stopping.enabled:
                self.state = snapshot()
        else:
            self.waited += 1
        self.ran_out = self.stopping.enabled and self.waited >= self.stopping.patience
        return self.ran_out


def _value(metric: float | None) -> float:
    return math.nan if metric is None else metric
