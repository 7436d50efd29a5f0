"""Training jobs (seeds 001, 002): a training request on a ready tabular dataset becomes a `training` job
on the pipeline, one on an image dataset an `image_training` job (see `image_jobs`); each kind's worker
and what its result registers are in this capability's spec."""

from __future__ import annotations

from typing import Any

from bson import ObjectId

from stratus.capabilities.training import image_jobs
from stratus.capabilities.training.schemas import Hyperparameters, Seed002TrainingStart, TrainingStart
from stratus.capabilities.training.spec import TRAINING
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.models import ModelRepository
from stratus.errors import Conflict, InvalidInput, NotFound, ValidationFailed
from stratus.jobs.service import JobService


class TrainingService:
    def __init__(
        self, *, jobs: JobService, datasets: DatasetRepository, models: ModelRepository | None = None
    ) -> None:
        self._jobs = jobs
        self._datasets = datasets
        self._models = models  # a Hub backbone for image training is one of the user's downloads

    async def start_training(
        self, user_id: ObjectId, request: TrainingStart, *, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Returns the job and whether it was created now (False: the Idempotency-Key was seen before)."""
        dataset = await self._datasets.require_owned(user_id, ObjectId(request.dataset_id))
        if dataset["status"] != "ready":
            raise Conflict(f"Dataset is not ready (status: {dataset['status']})", code="DATASET_NOT_READY")
        if dataset.get("kind") == "images":
            image_jobs.check_classes(dataset)
            backbone, source = await image_jobs.backbone_for(
                user_id, [request.base_model, request.model_type], self._models
            )
            image_doc = image_jobs.image_job(user_id, dataset, request, backbone, source)
            return await self._jobs.create(image_doc, idempotency_key=idempotency_key)
        columns = {c["name"]: c["type"] for c in dataset.get("columns") or []}
        target = request.target or (dataset.get("metadata") or {}).get("target")
        if not target or target not in columns:
            raise InvalidInput(
                f"Target column '{target}' not found; columns: {', '.join(columns)}",
                code="TARGET_NOT_FOUND",
                details=[{"field": "target", "message": "not a column of the dataset"}],
            )
        objective = request.objective or _default_objective(dataset, columns[target])
        if objective == "regression" and columns[target] not in ("integer", "float"):
            raise InvalidInput(
                f"Target column '{target}' must be numeric for regression (it is {columns[target]})",
                code="TARGET_NOT_NUMERIC",
                details=[{"field": "target", "message": "must be numeric for regression"}],
            )
        hp = request.hyperparameters
        params = {
            "dataset_key": dataset["object_key"],
            "dataset_format": dataset["format"],
            "target": target,
            "objective": objective,
            "model_type": request.model_type,
            "hyperparameters": hp.model_dump(),
            "validation_split": request.validation_split,
            "early_stopping": request.early_stopping.model_dump(),
            "seed": request.seed,
        }
        rows = int(dataset.get("row_count") or 0)
        doc: dict[str, Any] = {
            "user_id": user_id,
            "kind": TRAINING,
            "dataset_id": dataset["_id"],
            "model_type": request.model_type,
            "model_name": request.name or f"{request.model_type} on {dataset['name']}",
            "objective": objective,
            "target": target,
            "params": params,
            "progress": 0.0,
            "current_epoch": 0,
            "total_epochs": hp.epochs,
            "metrics": {},
            "estimated_time": max(10, rows * hp.epochs // 20_000),
        }
        return await self._jobs.create(doc, idempotency_key=idempotency_key)

    async def start_seed002(
        self, user_id: ObjectId, body: Seed002TrainingStart, *, idempotency_key: str | None
    ) -> tuple[dict[str, Any], bool]:
        """Seed 002's training request: its dataset by `dataset_id`, or by `dataset_path` (an id or a name)."""
        if body.dataset_id is None and body.dataset_path is None:
            raise ValidationFailed(
                "dataset_id or dataset_path is required",
                details=[{"field": "dataset_path", "message": "dataset_id or dataset_path is required"}],
            )
        dataset_id = body.dataset_id or await self.resolve_dataset(user_id, body.dataset_path or "")
        request = TrainingStart(
            dataset_id=dataset_id,
            model_type=body.model_type,
            hyperparameters=Hyperparameters(
                epochs=body.epochs, batch_size=body.batch_size, learning_rate=body.learning_rate
            ),
            validation_split=body.validation_split,
            target=body.target,
            base_model=body.base_model,
        )
        return await self.start_training(user_id, request, idempotency_key=idempotency_key)

    async def resolve_dataset(self, user_id: ObjectId, reference: str) -> str:
        """Seed 002 names a dataset by `dataset_path`: accept a dataset id, a name, or a path ending in one."""
        candidates = [reference, reference.rstrip("/").rsplit("/", 1)[-1]]
        for candidate in candidates:
            if ObjectId.is_valid(candidate) and await self._datasets.get_owned(user_id, ObjectId(candidate)):
                return candidate
            found = await self._datasets.find_by_name(user_id, candidate)
            if found is not None:
                return str(found["_id"])
        raise NotFound(
            "Dataset not found",
            details=[{"field": "dataset_path", "message": "no dataset with this id or name"}],
        )


def _default_objective(dataset: dict[str, Any], target_type: str) -> str:
    declared = dataset.get("dataset_type")
    if declared in ("classification", "regression"):
        return str(declared)
    return "regression" if target_type == "float" else "classification"
