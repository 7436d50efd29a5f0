"""Inference with torch, inside the worker: validation scores, and the reference the portable model is
held to. The API does not serve from here: it runs `stratus.ml.portable_mlp` on model.json, without
torch; tests check the two agree on the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from stratus.ml import portable_mlp
from stratus.ml.portable_mlp import Prediction

EVAL_BATCH = 8192


def forward(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's raw outputs for every row of `x`, in eval mode, in bounded batches."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            parts = [model(x[i : i + EVAL_BATCH].to(device)) for i in range(0, len(x), EVAL_BATCH)]
    finally:
        model.train(was_training)
    return torch.cat(parts) if parts else torch.empty(0)


def predict_rows(
    model: nn.Module, doc: Mapping[str, Any], rows: Sequence[Mapping[str, Any]]
) -> list[Prediction]:
    """What `portable_mlp.load(doc).predict(rows)` should answer, computed by torch."""
    encoder = portable_mlp.encoder(doc["features"], doc["preprocessing"])
    x = torch.tensor([encoder.encode(row) for row in rows], dtype=torch.float32)
    outputs = forward(model, x).cpu().double()
    if portable_mlp.objective_of(doc) == "regression":
        scaling = doc["target_scaling"]
        return [Prediction(label=float(v) * scaling["std"] + scaling["mean"]) for v in outputs[:, 0]]
    labels = list(doc["labels"])
    probabilities = torch.softmax(outputs, dim=1)
    predictions = []
    for row in probabilities.tolist():
        best = max(range(len(row)), key=row.__getitem__)
        predictions.append(
            Prediction(
                label=labels[best], confidence=row[best], probabilities=dict(zip(labels, row, strict=True))
            )
        )
    return predictions
