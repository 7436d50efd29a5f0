"""A training objective: what a trained model learns to predict. "Task" names an inference request only
(issue 11); jobs and model records written before the rename call the objective `task`, and
`objective_of` reads them the same. Light: the API, the event intake and the model views import it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, get_args

from stratus.capabilities.training.images import IMAGE_OBJECTIVE, IMAGE_TRAINING

TabularObjective = Literal["classification", "regression"]
Objective = Literal["classification", "regression", "image_classification"]
OBJECTIVES: tuple[str, ...] = get_args(Objective)
assert IMAGE_OBJECTIVE in OBJECTIVES
_TRAINING_KINDS = ("training", IMAGE_TRAINING)


def objective_of(doc: Mapping[str, Any]) -> str | None:
    """The objective of a training job or a model record, or None (a Hub model has none: its `task` is
    the inference task it serves)."""
    if doc.get("objective") is not None:
        return str(doc["objective"])
    legacy = doc.get("task")
    # Model records have no `kind`, jobs no `source`: only a training job or a trained/user model qualifies.
    written_by_training = doc.get("kind", "training") in _TRAINING_KINDS and doc.get("source") != "hub"
    return str(legacy) if written_by_training and legacy in OBJECTIVES else None


def with_objective(data: Any) -> Any:
    """A stored document as a view reads it: `objective` filled in from the legacy `task`."""
    if isinstance(data, Mapping) and data.get("objective") is None:
        objective = objective_of(data)
        if objective is not None:
            return {**data, "objective": objective}
    return data


def objective_filter(objective: str) -> dict[str, Any]:
    """A model-list filter on the objective that also finds records written before the rename."""
    return {
        "$or": [{"objective": objective}, {"objective": None, "source": {"$ne": "hub"}, "task": objective}]
    }
