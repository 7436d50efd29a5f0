"""Micro-batching: concurrent requests for the same (task, model, options) become one engine call.

A request joins the open group for its key (the first one opens it and starts a `max_wait_ms` timer).
The group goes to its model when it holds `max_batch` items, or when the timer has expired and the
model is idle; while the model is busy with an earlier batch an expired group keeps gathering and goes
as soon as that batch ends (so under load batches grow instead of queueing one by one). A request is
never split: one larger than `max_batch` is a batch of its own (still one forward pass).

Each model has one executor thread, so the event loop stays free and models run side by side. The
engine's outputs are sliced back in request order: each request gets exactly its own. If a batch
fails (one request's input the validator could not foresee), each of its requests is run alone, so
only the faulty one sees the error.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

log = logging.getLogger("stratus_worker.inference")


class Engine(Protocol):
    def check(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]: ...

    def run(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class BatchResult:
    """One request's share of a batch."""

    outputs: list[dict[str, Any]]
    batch_size: int  # items in the engine call that served the request
    batched_requests: int  # requests in that call
    engine_ms: float  # the engine call's duration


@dataclass
class _Request:
    items: list[dict[str, Any]]
    future: asyncio.Future[BatchResult]


@dataclass
class _Group:
    key: tuple[str, str, str]
    task: str
    model: str
    options: dict[str, Any]
    requests: list[_Request] = field(default_factory=list)
    size: int = 0
    due: bool = False
    timer: asyncio.TimerHandle | None = None


class MicroBatcher:
    def __init__(self, engine: Engine, *, max_batch: int = 32, max_wait_ms: float = 10.0) -> None:
        if max_batch < 1 or max_wait_ms < 0:
            raise ValueError("max_batch must be >= 1 and max_wait_ms >= 0")
        self.engine = engine
        self.max_batch = max_batch
        self.max_wait_ms = max_wait_ms
        self._groups: dict[tuple[str, str, str], _Group] = {}
        self._running: Counter[str] = Counter()
        self._executors: dict[str, ThreadPoolExecutor] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.requests_served = 0
        self.batches_dispatched = 0

    async def submit(
        self, task: str, model: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> BatchResult:
        """This request's outputs, computed in a batch with whatever else arrives for the same key.
        Validation errors (unknown model, wrong task, bad input) are raised before any batching."""
        clean_items, clean_options = self.engine.check(task, model, items, options)
        loop = asyncio.get_running_loop()
        key = (task, model, json.dumps(clean_options, sort_keys=True))
        group = self._groups.get(key)
        if group is None:
            group = _Group(key, task, model, clean_options)
            self._groups[key] = group
            group.timer = loop.call_later(self.max_wait_ms / 1000, self._expire, group)
        future: asyncio.Future[BatchResult] = loop.create_future()
        group.requests.append(_Request(clean_items, future))
        group.size += len(clean_items)
        if group.size >= self.max_batch:
            self._dispatch(group)
        return await future

    def close(self) -> None:
        for executor in self._executors.values():
            executor.shutdown(wait=False, cancel_futures=True)

    # -------------------------------------------------------------------------------------- internals

    def _expire(self, group: _Group) -> None:
        if self._groups.get(group.key) is not group:
            return  # already dispatched (it filled up)
        group.due = True
        if not self._running[group.model]:
            self._dispatch(group)

    def _dispatch(self, group: _Group) -> None:
        if self._groups.get(group.key) is group:
            del self._groups[group.key]
        if group.timer is not None:
            group.timer.cancel()
        self._running[group.model] += 1
        task = asyncio.get_running_loop().create_task(self._execute(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _executor(self, model: str) -> ThreadPoolExecutor:
        executor = self._executors.get(model)
        if executor is None:
            name = "model-" + "".join(c if c.isalnum() else "-" for c in model)
            executor = self._executors[model] = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)
        return executor

    async def _call(self, group: _Group, items: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], float]:
        started = time.perf_counter()
        self.batches_dispatched += 1
        outputs = await asyncio.get_running_loop().run_in_executor(
            self._executor(group.model), self.engine.run, group.task, group.model, items, group.options
        )
        return outputs, (time.perf_counter() - started) * 1000

    async def _execute(self, group: _Group) -> None:
        try:
            items = [item for request in group.requests for item in request.items]
            try:
                outputs, engine_ms = await self._call(group, items)
            except Exception as error:
                if len(group.requests) == 1:
                    _settle(group.requests[0], error)
                else:
                    log.warning(
                        "batch of %d requests failed (%s); running them one by one",
                        len(group.requests),
                        error,
                    )
                    await self._one_by_one(group)
                return
            offset = 0
            for request in group.requests:
                share = outputs[offset : offset + len(request.items)]
                offset += len(request.items)
                _settle(request, BatchResult(share, len(items), len(group.requests), engine_ms))
        finally:
            self.requests_served += len(group.requests)
            self._running[group.model] -= 1
            for waiting in list(self._groups.values()):
                if waiting.model == group.model and waiting.due:
                    self._dispatch(waiting)

    async def _one_by_one(self, group: _Group) -> None:
        for request in group.requests:
            try:
                outputs, engine_ms = await self._call(group, request.items)
            except Exception as error:
                _settle(request, error)
            else:
                _settle(request, BatchResult(outputs, len(request.items), 1, engine_ms))


def _settle(request: _Request, outcome: BatchResult | BaseException) -> None:
    if request.future.done():  # the client went away
        return
    if isinstance(outcome, BaseException):
        request.future.set_exception(outcome)
    else:
        request.future.set_result(outcome)
