"""The network: a plain MLP, and its export to the portable layer list `stratus.ml.portable_mlp` runs.

Only Linear, ReLU and Dropout appear, so the export is exact: dropout is the identity at inference.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import nn


def build_mlp(inputs: int, hidden: list[int], outputs: int, dropout: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = inputs
    for size in hidden:
        layers += [nn.Linear(width, size), nn.ReLU()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        width = size
    layers.append(nn.Linear(width, outputs))
    return nn.Sequential(*layers)


def export_layers(model: nn.Sequential) -> list[dict[str, Any]]:
    """[{"weight", "bias", "activation"}] per Linear, in order; "relu" when a ReLU follows it."""
    modules = [m for m in model if not isinstance(m, nn.Dropout)]
    exported: list[dict[str, Any]] = []
    for position, module in enumerate(modules):
        if not isinstance(module, nn.Linear):
            continue
        relu = position + 1 < len(modules) and isinstance(modules[position + 1], nn.ReLU)
        exported.append(
            {
                "weight": module.weight.detach().cpu().double().tolist(),
                "bias": module.bias.detach().cpu().double().tolist(),
                "activation": "relu" if relu else None,
            }
        )
    return exported


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def make_optimizer(
    name: str, parameters: Iterable[nn.Parameter], learning_rate: float, weight_decay: float
) -> torch.optim.Optimizer:
    if name == "adam":
        return torch.optim.Adam(parameters, lr=learning_rate, weight_decay=weight_decay)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=learning_rate, momentum=0.9, weight_decay=weight_decay)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=learning_rate, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer {name!r}")
