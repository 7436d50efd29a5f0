"""`InferenceEngine`: the catalogue's models, each loaded once on first use and kept.

`run(task, model_name, items, options)` is synchronous and thread-safe: loading a model happens once
even when several threads ask at the same time (and one load at a time in the process, see
`loading`; a failed load is not kept, so the next call tries again), and batches for one model run one at a time (a fast
tokenizer refuses concurrent use; the CPU gains nothing from two forward passes of the same model at
once); different models run in parallel. Each call takes all its items through one forward pass.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, cast

import torch

from stratus_worker.inference import tasks
from stratus_worker.inference.backends import Backend, default_cache_dir, load_backend
from stratus_worker.inference.errors import WrongTask
from stratus_worker.inference.registry import BUILTIN_MODELS, ModelSpec, get

log = logging.getLogger("stratus_worker.inference")


class InferenceEngine:
    def __init__(
        self,
        models: Sequence[ModelSpec] = BUILTIN_MODELS,
        *,
        cache_dir: Path | None = None,
        num_threads: int | None = None,
        max_downloaded_loaded: int = 4,
    ) -> None:
        """`num_threads` sets torch's intra-op threads for the process (None: leave torch's default;
        1 is often faster on a small, shared CPU). `cache_dir` holds converted GGUF models.
        `max_downloaded_loaded` bounds how many downloaded models stay in memory: users may download
        any number, so the least recently used is unloaded (built-in models always stay)."""
        self.models = tuple(models)
        self.max_downloaded_loaded = max_downloaded_loaded
        self._last_used: dict[str, float] = {}
        self.cache_dir = cache_dir or default_cache_dir()
        if num_threads:
            torch.set_num_threads(num_threads)
        self._backends: dict[str, Backend] = {}
        self._guard = threading.Lock()
        self._load_locks: dict[str, threading.Lock] = {}
        self._run_locks: dict[str, threading.Lock] = {}
        self._batches_run = 0
        self._items_run = 0

    # ------------------------------------------------------------------------------------ catalogue

    def catalogue(self) -> list[dict[str, Any]]:
        loaded = set(self.loaded())
        return [{**spec.describe(), "loaded": spec.name in loaded} for spec in self.models]

    def spec(self, model_name: str) -> ModelSpec:
        """The model's entry (ModelNotFound otherwise)."""
        return get(model_name, self.models)

    def add(self, spec: ModelSpec) -> None:
        """Serve one more model (a downloaded one); a spec already known by this name is kept."""
        with self._guard:
            if all(known.name != spec.name for known in self.models):
                self.models = (*self.models, spec)

    def knows(self, model_name: str) -> bool:
        with self._guard:
            return any(spec.name == model_name for spec in self.models)

    def loaded(self) -> list[str]:
        with self._guard:
            return [spec.name for spec in self.models if spec.name in self._backends]

    @property
    def batches_run(self) -> int:
        """How many `run` calls reached a model (one forward pass each)."""
        return self._batches_run

    @property
    def items_run(self) -> int:
        return self._items_run

    # ---------------------------------------------------------------------------------------- work

    def check(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Validate a call without loading anything: UnknownTask, ModelNotFound, WrongTask or
        InvalidInput. Returns the items and options with their defaults."""
        tasks.check_task(task)
        spec = self.spec(model_name)
        if task not in spec.tasks:
            raise WrongTask(model_name, task, spec.tasks)
        return tasks.validate(task, items, options)

    def load(self, model_name: str) -> Backend:
        """The model's backend, loading it on first use (once, whatever the number of callers)."""
        spec = self.spec(model_name)
        with self._guard:
            backend = self._backends.get(spec.name)
            if backend is not None:
                return backend
            lock = self._load_locks.setdefault(spec.name, threading.Lock())
        with lock:
            with self._guard:
                backend = self._backends.get(spec.name)
            if backend is None:
                started = time.perf_counter()
                backend = self._construct(spec)
                log.info("loaded %s in %.1f s", spec.name, time.perf_counter() - started)
                with self._guard:
                    self._backends[spec.name] = backend
                    self._run_locks.setdefault(spec.name, threading.Lock())
                    self._last_used[spec.name] = time.monotonic()
                if spec.source == "hub":
                    self._unload_downloaded(keep=spec.name)
        return backend

    def _construct(self, spec: ModelSpec) -> Backend:
        if spec.loader == "lora-adapter":  # a fine-tuned adapter, borrowing its base's loaded backend
            from stratus_worker.inference.adapters import AdapterBackend

            return cast(Backend, AdapterBackend(spec, self))
        return load_backend(spec, self.cache_dir)

    def _unload_downloaded(self, *, keep: str) -> None:
        """Unload the least recently used downloaded models beyond the bound; one that is running a
        batch right now is left for a later load to reconsider."""
        with self._guard:
            # Adapters hold no weights of their own (their base's backend does): they do not count.
            downloaded = [
                s.name
                for s in self.models
                if s.source == "hub" and s.loader != "lora-adapter" and s.name in self._backends
            ]
            excess = len(downloaded) - self.max_downloaded_loaded
            candidates = sorted(
                (n for n in downloaded if n != keep), key=lambda n: self._last_used.get(n, 0.0)
            )
            for name in candidates:
                if excess <= 0:
                    break
                lock = self._run_locks[name]
                if lock.acquire(blocking=False):
                    try:
                        del self._backends[name]
                        log.info("unloaded %s (least recently used downloaded model)", name)
                        excess -= 1
                    finally:
                        lock.release()

    def run(
        self, task: str, model_name: str, items: Sequence[Any], options: dict[str, Any] | None = None
    ) -> list[dict[str, Any]]:
        """One output per item, in order, from one batched forward pass."""
        clean_items, clean_options = self.check(task, model_name, items, options)
        if not clean_items:
            return []
        backend = self.load(model_name)
        with self._guard:
            run_lock = self._run_locks[model_name]
            self._last_used[model_name] = time.monotonic()
        with run_lock:
            outputs = tasks.run(task, backend, clean_items, clean_options)
            with self._guard:
                self._batches_run += 1
                self._items_run += len(clean_items)
        if len(outputs) != len(clean_items):  # a broken task must never shift results between callers
            raise RuntimeError(f"{task} returned {len(outputs)} outputs for {len(clean_items)} inputs")
        return outputs

    @contextmanager
    def exclusive(self, model_name: str) -> Iterator[Backend]:
        """The model's backend (loaded on first use), held for the caller alone: a streamed chat reply
        runs its own `generate` under the same per-model lock as the batches (on the caller's thread)."""
        backend = self.load(model_name)
        with self._guard:
            run_lock = self._run_locks[model_name]
            self._last_used[model_name] = time.monotonic()
        with run_lock:
            yield backend
            with self._guard:
                self._batches_run += 1
                self._items_run += 1
