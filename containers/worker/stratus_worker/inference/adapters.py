"""Fine-tuned LoRA adapters served on their base model, unmerged, with no second copy of the base.

A request for an adapter carries a `source` with `adapter: {"base": ...}` (the fine-tune job's base:
a built-in name, or a downloaded model's snapshot); the adapter's own files come from storage like a
downloaded model's. The engine serves the adapter as its own entry (`loader: lora-adapter`) whose
backend borrows the base's loaded backend: the first adapter wraps the base model in peft's
`PeftModel` (its LoRA layers are injected into the base's modules in place), later ones are added with
`load_adapter`, and each request switches to its adapter (`set_adapter`) under the base's adapter lock;
requests for the base itself run with every adapter switched off. So a base and any number of its
fine-tunes cost one base in memory plus a few MB per adapter, and a fine-tuned model answers seconds
after its job ends, without a merge.

The base is looked up through the engine on every call: if the base (a downloaded model) was unloaded
and loaded again, the adapter is attached to the new copy rather than keeping the old one alive.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stratus.ports.storage import ObjectStorage
from stratus_worker.inference import downloaded
from stratus_worker.inference.backends import CausalLMBackend, Completion, Sampling
from stratus_worker.inference.errors import ModelUnavailable
from stratus_worker.inference.registry import ModelSpec, get

if TYPE_CHECKING:
    from stratus_worker.inference.engine import InferenceEngine

DEFAULT_MAX_LENGTH = 2048
TASKS = ("generation", "qa", "summarization")


def is_adapter(source: Mapping[str, Any]) -> bool:
    return isinstance(source.get("adapter"), dict)


def base_spec(base: Mapping[str, Any], storage: ObjectStorage, cache_dir: Path) -> ModelSpec:
    """The engine entry of an adapter's base: a built-in model's own entry, or a downloaded causal LM's
    (the same key `name@revision` its NLP requests use, so both share one loaded model)."""
    if not base.get("snapshot"):
        return get(str(base.get("name")))
    path = downloaded.fetch(storage, base, cache_dir)
    return ModelSpec(
        name=downloaded.engine_key(str(base.get("name")), base),
        tasks=TASKS,
        architecture=str(base.get("architecture") or "causal LM"),
        parameters=0,
        size_mb=0.0,
        max_sequence_length=int(base.get("max_sequence_length") or DEFAULT_MAX_LENGTH),
        loader="hub-causal-lm",
        package="",
        subpath="",
        distribution="POST /models/download",
        source="hub",
        extra={"path": str(path)},
    )


def spec_for(name: str, source: Mapping[str, Any], path: Path, base: ModelSpec) -> ModelSpec:
    """The engine entry of an adapter whose files are in `path`, served on the entry `base`."""
    return ModelSpec(
        name=downloaded.engine_key(name, source),
        tasks=TASKS,
        architecture=f"{source.get('architecture') or base.architecture} + LoRA adapter",
        parameters=0,
        size_mb=float(source.get("size_mb") or 0.0),
        max_sequence_length=int(source.get("max_sequence_length") or base.max_sequence_length),
        loader="lora-adapter",
        package="",
        subpath="",
        distribution="POST /api/llm-finetuning/lora/start",
        source="hub",  # counted with downloaded models: least recently used ones are unloaded
        extra={"path": str(path), "base_key": base.name},
    )


class AdapterBackend:
    """The `CausalLMBackend` interface of an adapter: its base's tokenizer and limits, generation with
    the adapter switched on. Holds no weights of its own beyond peft's LoRA layers."""

    def __init__(self, spec: ModelSpec, engine: InferenceEngine) -> None:
        self.spec = spec
        self._engine = engine
        self._path = Path(spec.extra["path"])
        _ = self.base  # loads the base (if needed) and attaches the adapter now: errors show at load

    @property
    def base(self) -> CausalLMBackend:
        base = self._engine.load(str(self.spec.extra["base_key"]))
        if not isinstance(base, CausalLMBackend):
            raise ModelUnavailable(f"Base model '{self.spec.extra['base_key']}' is not a causal LM")
        base.attach_adapter(self.spec.name, self._path)
        return base

    # What the generation, QA and summarisation tasks read (see CausalLMBackend).
    @property
    def tokenizer(self) -> Any:
        return self.base.tokenizer

    @property
    def model(self) -> Any:
        """The base model with its adapters (peft's PeftModel); the base's own weights."""
        return self.base.peft

    @property
    def max_length(self) -> int:
        return min(self.base.max_length, self.spec.max_sequence_length)

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        return self.base.prompt_ids(messages)

    def fit(self, text: str, max_tokens: int) -> tuple[str, bool]:
        return self.base.fit(text, max_tokens)

    def generate(
        self, prompts: Sequence[list[int]], rows: Sequence[Sampling], **kwargs: Any
    ) -> list[Completion]:
        return self.base.generate(prompts, rows, adapter=self.spec.name, **kwargs)

    def adapter_applied(self) -> contextlib.AbstractContextManager[None]:
        """This adapter switched on in its base's model, under the base's adapter lock: for code that runs
        `self.model` itself (a streaming chat) instead of `generate`."""
        return self.base.adapter_applied(self.spec.name)
