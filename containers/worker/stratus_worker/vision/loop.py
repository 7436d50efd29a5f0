"""The image kind of the training loop (`stratus_worker.training.EpochTrainer`): batches are decoded
uint8 images, normalised (and, when asked, flipped and cropped) on the device as they are drawn.

Only the trainable parameters (the head, and any unfrozen blocks) are optimised, checkpointed and kept
for early stopping: the frozen backbone is the pretrained one and is not copied around every epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from stratus_worker.training import EpochTrainer, Fit
from stratus_worker.vision.backbones import Built
from stratus_worker.vision.images import augment, normalise

if TYPE_CHECKING:
    from stratus_worker.runtime import JobContext
    from stratus_worker.vision.train import ImageParams

__all__ = ["EVAL_BATCH", "Fit", "ImageTrainer", "Split"]

EVAL_BATCH = 64


@dataclass
class Split:
    x_train: torch.Tensor  # uint8 (n, 3, s, s)
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor


class ImageTrainer(EpochTrainer["ImageParams"]):
    checkpoint_format = "stratus-image-checkpoint/1"

    def __init__(
        self, ctx: JobContext, params: ImageParams, built: Built, split: Split, labels: list[str]
    ) -> None:
        super().__init__(ctx, params, built.model, built.model.trainable(), classification=True)
        self.built, self.split, self.labels = built, split, labels

    def _inputs(self, batch: torch.Tensor, *, train: bool) -> torch.Tensor:
        x = normalise(batch.to(self.device, non_blocking=True), self.built.mean, self.built.std)
        if train and self.params.hyperparameters.augment:
            x = augment(x, self.generator)
        return x

    def _size(self) -> int:
        return len(self.split.y_train)

    def _batch(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self._inputs(self.split.x_train[index], train=True), self.split.y_train[index].to(self.device)

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

    def _snapshot(self) -> dict[str, Any]:
        trainable = {id(p) for p in self.built.model.trainable()}
        # Batch-norm running statistics of unfrozen blocks are buffers: kept with their block's weights.
        names = {n.rsplit(".", 1)[0] for n, p in self.model.named_parameters() if id(p) in trainable}
        return {
            k: v.detach().clone() for k, v in self.model.state_dict().items() if k.rsplit(".", 1)[0] in names
        }

    def _restore(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state, strict=False)  # the best epoch's trainable weights

    def _checkpoint_state(self) -> dict[str, Any]:
        return {
            "backbone": self.params.backbone,
            "trainable_state": {k: v.cpu() for k, v in self._snapshot().items()},
            "labels": self.labels,
        }
