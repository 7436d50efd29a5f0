"""Each NLP task limit is written once (stratus.capabilities.nlp.spec) and both sides enforce exactly it:
the API's request schema and the inference worker's validation accept the edge and refuse one past it."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

from stratus.capabilities.nlp import schemas, spec
from stratus.schemas.options import IntOption
from stratus_worker.inference import tasks as worker
from stratus_worker.inference.errors import InvalidInput

# (task, request schema, a valid item, field, its limit)
INT_LIMITS: list[tuple[str, type[BaseModel], dict[str, Any], str, IntOption]] = [
    ("generation", schemas.GenerationRequest, {"prompt": "hi"}, "max_tokens", spec.MAX_TOKENS),
    ("summarization", schemas.SummarizationRequest, {"text": "x", "min_length": 0}, "max_length",
     spec.SUMMARY_MAX_LENGTH),
    ("summarization", schemas.SummarizationRequest, {"text": "x", "max_length": 1024}, "min_length",
     spec.SUMMARY_MIN_LENGTH),
]  # fmt: skip


def api_accepts(schema: type[BaseModel], body: dict[str, Any]) -> bool:
    try:
        schema.model_validate(body)
    except ValidationError:
        return False
    return True


def worker_accepts(task: str, item: dict[str, Any], options: dict[str, Any] | None = None) -> bool:
    try:
        worker.validate(task, [item], options)
    except InvalidInput:
        return False
    return True


@pytest.mark.parametrize(("task", "schema", "item", "field", "limit"), INT_LIMITS)
def test_integer_limits_agree(
    task: str, schema: type[BaseModel], item: dict[str, Any], field: str, limit: IntOption
) -> None:
    for value, ok in ((limit.ge, True), (limit.le, True), (limit.ge - 1, False), (limit.le + 1, False)):
        body = {**item, field: value}
        assert api_accepts(schema, body) is ok, (field, value)
        assert worker_accepts(task, body) is ok, (field, value)


@pytest.mark.parametrize(("task", "schema", "item", "field", "limit"), INT_LIMITS)
def test_integer_defaults_agree(
    task: str, schema: type[BaseModel], item: dict[str, Any], field: str, limit: IntOption
) -> None:
    bare = {k: v for k, v in item.items() if k in ("prompt", "text")}
    assert getattr(schema.model_validate(bare), field) == limit.default
    [prepared], _ = worker.validate(task, [bare], None)
    assert prepared[field] == limit.default


def test_temperature_agrees() -> None:
    t = spec.TEMPERATURE
    for value, ok in ((t.ge, True), (t.le, True), (t.le + 0.1, False), (t.ge - 0.1, False)):
        body = {"prompt": "hi", "temperature": value}
        assert api_accepts(schemas.GenerationRequest, body) is ok
        assert worker_accepts("generation", body) is ok
    [prepared], _ = worker.validate("generation", [{"prompt": "hi"}], None)
    assert prepared["temperature"] == schemas.GenerationRequest(prompt="hi").temperature == t.default


def test_candidate_labels_agree() -> None:
    count = spec.CANDIDATE_LABELS
    for n, ok in ((count.min, True), (count.max, True), (count.min - 1, False), (count.max + 1, False)):
        body = {"text": "t", "candidate_labels": [f"l{i}" for i in range(n)]}
        assert api_accepts(schemas.ClassificationRequest, body) is ok, n
        assert worker_accepts("classification", body) is ok, n


def test_normalize_default_agrees() -> None:
    _, options = worker.validate("embeddings", [{"text": "t"}], None)
    assert options["normalize"] is schemas.EmbeddingsRequest(text="t").normalize is spec.NORMALIZE_DEFAULT
