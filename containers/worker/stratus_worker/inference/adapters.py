"""Fine-tuned LoRA adapters served on their base model, unmerged (peft's PeftModel around the base).

A request for an adapter carries a `source` with `adapter: {"base": ...}` (the fine-tune job's base:
a built-in name, or a downloaded model's snapshot); the adapter's own files come from storage like a
downloaded model's. The backend is a `CausalLMBackend` whose model is the base wrapped by PeftModel, so
generation, QA and summarisation work exactly as for the base, with the adapter's weights applied on the
side: a fine-tuned model answers seconds after its job ends, without a merge.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratus.ports.storage import ObjectStorage
from stratus_worker.inference.backends import CausalLMBackend
from stratus_worker.inference.downloaded import engine_key
from stratus_worker.inference.errors import ModelUnavailable
from stratus_worker.inference.registry import ModelSpec

DEFAULT_MAX_LENGTH = 2048


def is_adapter(source: Mapping[str, Any]) -> bool:
    return isinstance(source.get("adapter"), dict)


def spec_for(
    name: str, source: Mapping[str, Any], path: Path, storage: ObjectStorage, cache_dir: Path
) -> ModelSpec:
    """The engine entry of an adapter whose files are in `path`; its base's directory is resolved (and
    copied or converted) now, so loading it later needs no storage."""
    from stratus_worker.finetune.base import base_dir
    from stratus_worker.runtime import JobFailed

    base = dict(source["adapter"].get("base") or {})
    try:
        base_path = base_dir(base, storage, cache_dir)
    except JobFailed as e:
        raise ModelUnavailable(e.reason) from e
    return ModelSpec(
        name=engine_key(name, source),
        tasks=("generation", "qa", "summarization"),
        architecture=f"{source.get('architecture') or 'causal LM'} + LoRA adapter",
        parameters=0,
        size_mb=float(source.get("size_mb") or 0.0),
        max_sequence_length=int(source.get("max_sequence_length") or DEFAULT_MAX_LENGTH),
        loader="lora-adapter",
        package="",
        subpath="",
        distribution="POST /api/llm-finetuning/lora/start",
        source="hub",  # counted with downloaded models: least recently used ones are unloaded
        extra={"path": str(path), "base_path": str(base_path)},
    )


class AdapterBackend(CausalLMBackend):
    def __init__(self, spec: ModelSpec, adapter_path: Path, cache_dir: Path) -> None:
        from peft import PeftModel

        super().__init__(spec, Path(spec.extra["base_path"]), cache_dir)
        self.model = PeftModel.from_pretrained(self.model, adapter_path, is_trainable=False).eval()
