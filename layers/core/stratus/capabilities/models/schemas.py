"""Model registry records (seed 003's /api/models shape)."""

from typing import Any

from pydantic import ConfigDict, Field, field_serializer, field_validator, model_validator

from stratus.capabilities.training.objective import OBJECTIVES, Objective, with_objective
from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.base import Schema
from stratus.schemas.common import Clearable, PublicModel, UpdateModel, UtcDateTime


def _metric(value: Any) -> Any:
    # Seed 003 sends metrics as strings ("0.95"); we keep numbers and render them back as strings.
    if value is None or value == "":
        return None
    try:
        return float(value)
    except (TypeError, ValueError) as e:
        raise ValueError("must be a number") from e
    except OverflowError as e:  # an integer beyond any float (10**400)
        raise ValueError("must be a finite number") from e


class ModelCreate(Schema):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    name: str = Field(min_length=1, max_length=200)
    base_model: str = Field(min_length=1, max_length=200)
    version: str = Field(default="1.0.0", min_length=1, max_length=50)
    accuracy: float | None = None
    f1_score: float | None = None
    loss: float | None = None
    status: str = Field(default="ready", max_length=40)
    dataset_id: ObjectIdStr | None = None
    task: str | None = Field(default=None, max_length=60, description="The inference task it serves")
    objective: Objective | None = Field(
        default=None, description=f"What it was trained to predict: {', '.join(OBJECTIVES)}"
    )

    _metrics = field_validator("accuracy", "f1_score", "loss", mode="before")(_metric)


class ModelUpdate(UpdateModel):
    model_config = ConfigDict(protected_namespaces=())

    name: str | None = Field(default=None, min_length=1, max_length=200)
    version: str | None = Field(default=None, min_length=1, max_length=50)
    accuracy: Clearable[float] = None
    f1_score: Clearable[float] = None
    loss: Clearable[float] = None
    status: str | None = Field(default=None, max_length=40)

    _metrics = field_validator("accuracy", "f1_score", "loss", mode="before")(_metric)


class ModelRecordPublic(PublicModel):
    model_config = ConfigDict(protected_namespaces=())

    user_id: IdOut | None
    name: str
    base_model: str | None = None
    version: str | None = None
    accuracy: float | None = None
    f1_score: float | None = None
    loss: float | None = None
    status: str
    source: str = "user"
    task: str | None = None
    objective: str | None = None
    dataset_id: IdOut | None = None
    created_at: UtcDateTime

    _legacy_objective = model_validator(mode="before")(with_objective)

    @field_serializer("accuracy", "f1_score", "loss")
    def _as_text(self, value: float | None) -> str | None:
        return None if value is None else repr(value)


class RegistryModelSummary(PublicModel):
    """A model in seed 001's GET /models list."""

    model_config = ConfigDict(protected_namespaces=())

    name: str
    model_type: str | None = None
    source: str = "user"
    task: str | None = None  # the inference task a downloaded model serves
    objective: str | None = None  # what a trained model predicts
    status: str
    accuracy: float | None = None
    size_mb: float | None = None
    tasks: list[str] | None = None
    created_at: UtcDateTime | None = None

    _legacy_objective = model_validator(mode="before")(with_objective)


class RegistryModelPage(Schema):
    total: int
    page: int
    limit: int
    models: list[RegistryModelSummary]


class Performance(Schema):
    accuracy: float | None = None
    precision: float | None = None
    recall: float | None = None
    f1_score: float | None = None
    rmse: float | None = None
    mae: float | None = None
    r2: float | None = None
    # Image classifiers: {"labels": [...], "matrix": [[count of true row, predicted column]]} held out.
    confusion_matrix: dict[str, Any] | None = None


class RegistryModelDetail(RegistryModelSummary):
    """Seed 001's GET /models/{id}: architecture, held-out performance and how it was trained."""

    architecture: dict[str, Any] = {}
    performance: Performance = Performance()
    training_config: dict[str, Any] = {}
    labels: list[Any] | None = None
    features: list[str] | None = None
    target: str | None = None
    job_id: IdOut | None = None
    dataset_id: IdOut | None = None

    @field_validator("performance", mode="before")
    @classmethod
    def _performance(cls, value: Any) -> Any:
        if isinstance(value, dict) and "f1_score" not in value and "f1" in value:
            return {**value, "f1_score": value["f1"]}
        return value or {}


class PredictRequest(Schema):
    """Seed 001: `input` (one row) or `inputs` (a batch); a row is a list in feature order or an object.
    For an image model, each is a base64-encoded image (or send multipart `image`/`images` instead)."""

    model_config = ConfigDict(extra="forbid")

    input: list[Any] | dict[str, Any] | str | None = None
    inputs: list[list[Any] | dict[str, Any] | str] | None = Field(default=None, max_length=1000)

    def rows(self) -> list[Any]:
        if self.inputs is not None:
            return list(self.inputs)
        return [self.input] if self.input is not None else []


class PredictResponse(Schema):
    model_id: str
    predictions: list[dict[str, Any]]
