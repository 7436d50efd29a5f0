"""MicroBatcher with a stand-in engine (no models): who gets which outputs, and how many engine calls."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from typing import Any

import pytest

from stratus_worker.inference.batching import MicroBatcher
from stratus_worker.inference.errors import InvalidInput, ModelNotFound


class EchoEngine:
    """Answers each item with its own text, after `delay` seconds per call; records every call."""

    def __init__(self, delay: float = 0.02) -> None:
        self.delay = delay
        self.calls: list[tuple[str, str, list[dict[str, Any]], dict[str, Any]]] = []
        self.threads: set[str] = set()

    def check(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        if model_name != "m" and model_name != "other":
            raise ModelNotFound(model_name, ["m", "other"])
        if any(not isinstance(item, dict) or "text" not in item for item in items):
            raise InvalidInput("inputs need a text")
        return [dict(item) for item in items], dict(options or {})

    def run(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        self.threads.add(threading.current_thread().name)
        self.calls.append((task, model_name, list(items), dict(options or {})))
        time.sleep(self.delay)
        if any(item["text"] == "boom" for item in items):
            raise InvalidInput("cannot embed 'boom'")
        return [{"echo": item["text"], "options": dict(options or {})} for item in items]


async def test_concurrent_requests_share_calls_and_get_their_own_outputs() -> None:
    engine = EchoEngine()
    batcher = MicroBatcher(engine, max_batch=32, max_wait_ms=20)
    requests = [[{"text": f"r{i}-{j}"} for j in range(1 + i % 3)] for i in range(16)]
    results = await asyncio.gather(*(batcher.submit("embeddings", "m", items) for items in requests))
    for items, result in zip(requests, results, strict=True):
        assert [o["echo"] for o in result.outputs] == [item["text"] for item in items]
        assert result.batch_size >= len(items)
    assert len(engine.calls) < len(requests)
    assert batcher.requests_served == 16
    assert all(name.startswith("model-m") for name in engine.threads)
    batcher.close()


async def test_different_options_are_never_mixed() -> None:
    engine = EchoEngine()
    batcher = MicroBatcher(engine, max_batch=32, max_wait_ms=20)
    results = await asyncio.gather(
        *(batcher.submit("embeddings", "m", [{"text": str(i)}], {"normalize": i % 2 == 0}) for i in range(8))
    )
    for i, result in enumerate(results):
        assert result.outputs == [{"echo": str(i), "options": {"normalize": i % 2 == 0}}]
    assert len(engine.calls) == 2
    assert sorted(call[3]["normalize"] for call in engine.calls) == [False, True]
    batcher.close()


async def test_a_full_batch_goes_at_once_and_a_large_request_is_not_split() -> None:
    engine = EchoEngine(delay=0)
    batcher = MicroBatcher(engine, max_batch=4, max_wait_ms=10_000)  # the timer would never fire in time
    started = time.monotonic()
    results = await asyncio.gather(*(batcher.submit("embeddings", "m", [{"text": str(i)}]) for i in range(8)))
    assert time.monotonic() - started < 5
    assert [len(call[2]) for call in engine.calls] == [4, 4]
    assert [r.outputs[0]["echo"] for r in results] == [str(i) for i in range(8)]
    big = await batcher.submit("embeddings", "m", [{"text": str(i)} for i in range(10)])
    assert big.batch_size == 10 and len(big.outputs) == 10
    batcher.close()


async def test_a_failing_request_does_not_fail_its_batch_mates() -> None:
    engine = EchoEngine()
    batcher = MicroBatcher(engine, max_batch=32, max_wait_ms=20)
    texts = ["a", "boom", "c", "d"]
    results = await asyncio.gather(
        *(batcher.submit("embeddings", "m", [{"text": t}]) for t in texts), return_exceptions=True
    )
    assert isinstance(results[1], InvalidInput)
    assert [r.outputs[0]["echo"] for r in results if not isinstance(r, BaseException)] == ["a", "c", "d"]
    batcher.close()


async def test_validation_errors_come_before_batching() -> None:
    engine = EchoEngine()
    batcher = MicroBatcher(engine)
    with pytest.raises(ModelNotFound):
        await batcher.submit("embeddings", "nope", [{"text": "x"}])
    with pytest.raises(InvalidInput):
        await batcher.submit("embeddings", "m", [{"txt": "x"}])
    assert engine.calls == []
    batcher.close()


async def test_models_run_side_by_side() -> None:
    engine = EchoEngine(delay=0.3)
    batcher = MicroBatcher(engine, max_batch=1, max_wait_ms=0)
    started = time.monotonic()
    await asyncio.gather(
        batcher.submit("embeddings", "m", [{"text": "1"}]), batcher.submit("ner", "other", [{"text": "2"}])
    )
    assert time.monotonic() - started < 0.55  # one executor thread per model: the two calls overlapped
    assert {name.split("_")[0] for name in engine.threads} == {"model-m", "model-other"}
    batcher.close()
