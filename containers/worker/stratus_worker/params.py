"""The training kind's parameters, validated here as well as by the API: the worker is the one that
must not start a run on nonsense, and a bad value becomes a failed result that names the field."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    AliasChoices,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from stratus_worker.runtime import JobFailed

# What a tabular model learns to predict. Not a "task": that word names an inference request.
Objective = Literal["classification", "regression"]


class _Params(BaseModel):
    # Unknown keys are ignored: the API may send bookkeeping (dataset_id, name) the worker has no use for.
    model_config = ConfigDict(extra="ignore", frozen=True)


class Hyperparameters(_Params):
    learning_rate: float = Field(default=0.001, gt=0, lt=1)
    batch_size: int = Field(default=32, ge=1, le=65_536)
    epochs: int = Field(default=20, ge=1, le=10_000)
    optimizer: Literal["adam", "adamw", "sgd", "rmsprop"] = "adam"
    hidden_layers: list[int] = Field(default=[64, 32], max_length=16)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    weight_decay: float = Field(default=0.0, ge=0, lt=1)

    @model_validator(mode="after")
    def _sizes(self) -> Hyperparameters:
        if any(not 1 <= size <= 8192 for size in self.hidden_layers):
            raise ValueError("hidden_layers sizes must be between 1 and 8192")
        return self


class EarlyStopping(_Params):
    enabled: bool = False
    patience: int = Field(default=5, ge=1, le=10_000)
    monitor: Literal["val_loss", "val_accuracy", "loss"] = "val_loss"
    min_delta: float = Field(default=0.0, ge=0)


class TrainingParams(_Params):
    dataset_key: str = Field(min_length=1)
    dataset_format: Literal["csv", "jsonl", "json", "zip"] | None = None  # None: from the key's suffix
    target: str | None = None  # None: the column ingest would pick (target, label, class, y)
    features: list[str] | None = None  # None: every column but the target
    # None: decided from the target column. `task` is what jobs queued before the rename call it.
    objective: Objective | None = Field(default=None, validation_alias=AliasChoices("objective", "task"))
    model_type: str = "mlp"
    hyperparameters: Hyperparameters = Hyperparameters()
    validation_split: float = Field(default=0.2, gt=0, le=0.5)
    early_stopping: EarlyStopping = EarlyStopping()
    seed: int = Field(default=42, ge=0, lt=2**32)

    @field_validator("hyperparameters", "early_stopping", mode="before")
    @classmethod
    def _null_is_default(cls, value: Any) -> Any:
        return {} if value is None else value

    @property
    def format(self) -> str:
        if self.dataset_format:
            return self.dataset_format
        suffix = self.dataset_key.rpartition(".")[2].lower()
        return {"ndjson": "jsonl", "jsonl": "jsonl", "json": "json", "zip": "zip"}.get(suffix, "csv")


def parse_params(raw: dict[str, Any]) -> TrainingParams:
    """The parameters, or JobFailed listing every invalid field."""
    try:
        return TrainingParams.model_validate(raw)
    except ValidationError as e:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in error['loc']) or 'params'}: {error['msg']}"
            for error in e.errors()
        )
        raise JobFailed(f"Invalid training parameters: {problems}") from None
