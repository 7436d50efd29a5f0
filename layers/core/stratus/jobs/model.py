"""The Job record as stored in the `jobs` collection: one typed shape for every kind.

A TypedDict rather than a class: jobs travel as documents between pymongo, the services and the
response schemas, and the type checker still sees every field. Kind-specific inputs live in `params`
(what the worker receives) and results in `final_metrics`/`artifacts`/`model_id`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from bson import ObjectId


class Job(TypedDict, total=False):
    _id: ObjectId
    user_id: ObjectId
    kind: str  # a JobKind name (stratus.jobs.kinds)
    status: str  # a JobStatus, or a seed 003 status on client-managed records
    managed_by: str  # "client" for seed 003's records, which the pipeline never moves
    params: dict[str, Any]
    idempotency_key: str
    # Lifecycle stamps, written by the store's transitions.
    created_at: datetime
    updated_at: datetime
    queued_at: datetime
    claimed_at: datetime
    started_at: datetime
    heartbeat_at: datetime
    stop_requested_at: datetime
    completed_at: datetime | None
    error: str | None
    # Where it runs.
    backend: str
    external_id: str
    backend_state: str
    # Progress (the worker's events, ordered by `last_seq`).
    last_seq: int
    progress: float
    progress_decile: int
    phase: str | None
    current_epoch: int
    total_epochs: int
    current_step: int
    total_steps: int
    metrics: dict[str, Any]
    # Results.
    final_metrics: dict[str, Any]
    history: dict[str, Any]
    baseline: dict[str, Any]
    artifacts: dict[str, Any]
    duration_s: float | None
    model_id: ObjectId | None
    # What the job is about (the kinds' own fields).
    dataset_id: ObjectId
    model_name: str
    model_key: str
    model_type: str
    task: str  # training: the objective (classification, regression); download: the inference task
    target: str
    estimated_time: int
