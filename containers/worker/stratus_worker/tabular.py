"""The "training" kind: an MLP on a tabular dataset, from the dataset key to model.json.

Steps: validate params, load the table, split it (seeded), fit the encoding on the training split,
train (see `training`), score the held-out split against a naive baseline, and save three artifacts
under the job's output prefix: `model.json` (portable: what the API serves, without torch),
`checkpoint.pt` (torch state, optimizer and epoch) and `metrics.json`.
"""

from __future__ import annotations

from typing import Any

import torch

from stratus.ml.portable_mlp import FORMAT
from stratus_worker.dataset import Table, load_table, split
from stratus_worker.metrics import classification_metrics, majority_accuracy, mean_rmse, regression_metrics
from stratus_worker.model import build_mlp, export_layers, parameter_count
from stratus_worker.params import TrainingParams, parse_params
from stratus_worker.predict import forward
from stratus_worker.preprocess import Prepared, prepare
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import upload_json
from stratus_worker.training import Fit, Trainer


def run(ctx: JobContext) -> Outcome:
    params = parse_params(ctx.params)
    epochs = params.hyperparameters.epochs
    ctx.events.progress(
        "loading", epoch=0, total_epochs=epochs, step=0, total_steps=0, progress=0.0, metrics={}
    )
    table = load_table(ctx, params)
    if params.early_stopping.monitor == "val_accuracy" and table.objective == "regression":
        raise JobFailed(
            "early_stopping.monitor 'val_accuracy' needs a classification objective; use val_loss"
        )
    train, val = split(table.rows, params.validation_split, params.seed)
    data = prepare(table, train, val)
    if ctx.should_stop:
        raise JobStopped()
    torch.manual_seed(params.seed)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    hp = params.hyperparameters
    outputs = len(data.labels) if table.objective == "classification" else 1
    model = build_mlp(data.x_train.shape[1], hp.hidden_layers, outputs, hp.dropout).to(device)
    trainer = Trainer(ctx, params, model, data, table.objective)
    fit = trainer.fit()
    ctx.events.progress(
        "saving",
        epoch=fit.epochs_run,
        total_epochs=epochs,
        step=trainer.step,
        total_steps=fit.total_steps,
        progress=100.0,
        metrics=trainer.last_metrics,
    )
    final_metrics, baseline = evaluate(trainer, data, table, fit)
    trainer.save_checkpoint(upload=True)  # the final weights (the best epoch's, after early stopping)
    doc = model_document(model, data, table, params)
    artifacts = {
        "model": ctx.artifact_key("model.json"),
        "checkpoint": trainer.checkpoint_key,
        "metrics": ctx.artifact_key("metrics.json"),
    }
    size = upload_json(ctx.storage, artifacts["model"], doc)
    description = describe(model, data, table, params, size)
    upload_json(
        ctx.storage,
        artifacts["metrics"],
        {"job_id": ctx.job_id, "final_metrics": final_metrics, "history": fit.history, "baseline": baseline},
    )
    return Outcome(final_metrics, fit.history, baseline, artifacts, description)


def evaluate(
    trainer: Trainer, data: Prepared, table: Table, fit: Fit
) -> tuple[dict[str, Any], dict[str, float]]:
    """Held-out metrics of the final model, its training-split loss, and the naive baseline."""
    model = trainer.model
    outputs = forward(model, data.x_val).cpu()
    train_outputs = forward(model, data.x_train).cpu()
    loss_fn = trainer.loss_fn.cpu()
    common: dict[str, Any] = {
        "val_loss": float(loss_fn(outputs, data.y_val)),
        "train_loss": float(loss_fn(train_outputs, data.y_train)),
        "best_epoch": fit.best_epoch,
        "epochs_trained": fit.epochs_run,
        "stopped_early": fit.stopped_early,
        "train_rows": len(data.x_train),
        "validation_rows": len(data.x_val),
    }
    if table.objective == "classification":
        y_val, y_train = data.y_val.tolist(), data.y_train.tolist()
        metrics = classification_metrics(y_val, outputs.argmax(dim=1).tolist())
        train_accuracy = float((train_outputs.argmax(dim=1) == data.y_train).float().mean())
        # Seed 001 reads the held-out accuracy as val_accuracy; `accuracy` is the same figure.
        held_out = {"val_accuracy": metrics["accuracy"], "train_accuracy": train_accuracy}
        return {**metrics, **held_out, **common}, {"majority_accuracy": majority_accuracy(y_train, y_val)}
    scale, shift = data.target_std, data.target_mean
    actual = [v * scale + shift for v in data.y_val[:, 0].tolist()]
    predicted = [v * scale + shift for v in outputs[:, 0].tolist()]
    train_actual = [v * scale + shift for v in data.y_train[:, 0].tolist()]
    return {**regression_metrics(actual, predicted), **common}, {"mean_rmse": mean_rmse(train_actual, actual)}


def model_document(
    model: torch.nn.Sequential, data: Prepared, table: Table, params: TrainingParams
) -> dict[str, Any]:
    """model.json: everything `stratus.ml.portable_mlp` needs to serve the model."""
    doc: dict[str, Any] = {
        "format": FORMAT,
        "objective": table.objective,
        "model_type": params.model_type,
        "target": table.target,
        "features": table.features,
        "preprocessing": data.preprocessing,
        "layers": export_layers(model),
    }
    if table.objective == "classification":
        doc["labels"] = data.labels
    else:
        doc["target_scaling"] = {"mean": data.target_mean, "std": data.target_std}
    return doc


def describe(
    model: torch.nn.Sequential, data: Prepared, table: Table, params: TrainingParams, size: int
) -> dict[str, Any]:
    """The result event's `model`: what the API records about the trained model."""
    description: dict[str, Any] = {
        "objective": table.objective,
        "model_type": params.model_type,
        "architecture": {
            "input_features": len(table.features),
            "input_width": data.x_train.shape[1],
            "hidden_layers": list(params.hyperparameters.hidden_layers),
            "output_classes": len(data.labels) if table.objective == "classification" else 1,
            "parameters": parameter_count(model),
        },
        "target": table.target,
        "features": table.features,
        "size_mb": round(size / 1_000_000, 6),
    }
    if table.objective == "classification":
        description["labels"] = data.labels
    return description
