"""Training requests and job views: seed 001's shapes on one job resource."""

from typing import Annotated, Any, Literal

from pydantic import AliasChoices, ConfigDict, Field, model_validator

from stratus.capabilities.training import images
from stratus.capabilities.training.objective import TabularObjective, with_objective
from stratus.db.ids import IdOut, ObjectIdStr
from stratus.schemas.base import Schema
from stratus.schemas.common import PositiveInt64, PublicModel, UtcDateTime

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Monitor = Literal["val_loss", "val_accuracy", "loss"]


class Hyperparameters(Schema):
    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(default=0.001, gt=0, lt=1, description="Must be between 0 and 1")
    batch_size: int = Field(default=32, ge=1, le=4096)
    epochs: int = Field(default=20, ge=1, le=1000)
    optimizer: Optimizer = "adam"
    # Bounded so the exported model stays small enough to evaluate inside an API request.
    hidden_layers: list[Annotated[int, Field(ge=1, le=1024)]] = Field(
        default=[64, 32], min_length=1, max_length=8
    )
    dropout: float = Field(default=0.1, ge=0, lt=1)
    # Image datasets only: the side of the square the backbone sees, how many of its last blocks are
    # fine-tuned after the head (0: only the new head trains), and random flips and crops.
    image_size: int = Field(
        default=images.DEFAULT_IMAGE_SIZE, ge=images.MIN_IMAGE_SIZE, le=images.MAX_IMAGE_SIZE
    )
    unfreeze_blocks: int = Field(default=0, ge=0, le=32)
    augment: bool = True


class EarlyStopping(Schema):
    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    patience: int = Field(default=10, ge=1, le=1000)
    monitor: Monitor = "val_loss"


class TrainingStart(Schema):
    """Seed 001's POST /training/start, plus `target` and `objective` for datasets whose target is not
    obvious (`task`, its name before issue 11, is still accepted)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    dataset_id: ObjectIdStr
    model_type: str = Field(default="mlp", min_length=1, max_length=60)
    hyperparameters: Hyperparameters = Hyperparameters()
    validation_split: float = Field(default=0.2, gt=0, le=0.5)
    early_stopping: EarlyStopping = EarlyStopping()
    target: str | None = Field(
        default=None, min_length=1, max_length=200, description="Defaults to the dataset's target"
    )
    objective: TabularObjective | None = Field(
        default=None,
        validation_alias=AliasChoices("objective", "task"),
        description="classification or regression (default: from the dataset's type and target column)",
    )
    base_model: str | None = Field(
        default=None,
        min_length=1,
        max_length=200,
        description="Image datasets: the pretrained backbone (default: the one `model_type` names)",
    )
    name: str | None = Field(
        default=None, min_length=1, max_length=200, description="Name of the trained model"
    )
    # The worker's bound (stratus_worker.params): a larger seed would only fail once the job ran.
    seed: int = Field(default=42, ge=0, lt=2**32)


class TrainingStarted(Schema):
    job_id: str
    status: str
    created_at: UtcDateTime
    estimated_time: int = Field(description="Rough duration estimate in seconds")


class TrainingStatus(Schema):
    job_id: str
    status: str
    progress: float
    current_epoch: int
    total_epochs: int
    metrics: dict[str, Any]
    started_at: UtcDateTime | None
    elapsed_time: int
    error: str | None = None


class TrainingResults(Schema):
    job_id: str
    status: str
    model_id: str | None
    final_metrics: dict[str, Any]
    training_history: dict[str, list[float | None]]
    baseline: dict[str, Any] | None = None
    duration: int
    completed_at: UtcDateTime | None


class TrainingStopped(Schema):
    job_id: str
    task_id: str | None = None
    status: str
    message: str


class JobPublic(PublicModel):
    model_config = ConfigDict(protected_namespaces=())

    user_id: IdOut
    kind: str
    status: str
    dataset_id: IdOut | None = None
    model_type: str | None = None
    objective: str | None = None  # training jobs: classification, regression, image_classification
    task: str | None = None  # model downloads: the inference task the model will serve
    target: str | None = None
    progress: float = 0
    current_epoch: int = 0
    total_epochs: int = 0
    metrics: dict[str, Any] = {}
    final_metrics: dict[str, Any] | None = None
    model_id: IdOut | None = None
    error: str | None = None
    backend: str | None = None
    created_at: UtcDateTime
    started_at: UtcDateTime | None = None
    completed_at: UtcDateTime | None = None
    updated_at: UtcDateTime

    _legacy_objective = model_validator(mode="before")(with_objective)


class JobPage(Schema):
    jobs: list[JobPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page")


class JobEventPublic(PublicModel):
    type: str
    data: dict[str, Any]
    created_at: UtcDateTime


class JobEventPage(Schema):
    events: list[JobEventPublic]
    next_cursor: str | None


class Seed002TrainingStart(Schema):
    """Seed 002's POST /api/training/start. `dataset_path` names one of your datasets (its id or name);
    `output_dir` is accepted and ignored: outputs are stored per job and the model joins the registry."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    model_type: str = Field(default="mlp", min_length=1, max_length=60)
    base_model: str | None = Field(default=None, max_length=200)
    dataset_id: ObjectIdStr | None = None
    dataset_path: str | None = Field(default=None, min_length=1, max_length=500)
    output_dir: str | None = Field(default=None, max_length=500)
    epochs: int = Field(default=10, ge=1, le=1000)
    batch_size: int = Field(default=8, ge=1, le=4096)
    learning_rate: float = Field(default=0.0001, gt=0, lt=1, description="Must be between 0 and 1")
    save_steps: PositiveInt64 | None = Field(default=None, description="Checkpoints are written every epoch")
    target: str | None = Field(default=None, min_length=1, max_length=200)
    validation_split: float = Field(default=0.2, gt=0, le=0.5)


class Seed002TrainingStarted(Schema):
    task_id: str
    status: str


class Seed002TrainingStatus(Schema):
    task_id: str
    status: str
    progress: float
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    loss: float | None
    learning_rate: float | None
    metrics: dict[str, Any]
    error: str | None = None
