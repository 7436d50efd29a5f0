"""LLM fine-tuning kinds: `finetune` (train.py: a LoRA/QLoRA adapter) and `finetune_merge` (merge.py)."""

from __future__ import annotations

from stratus_worker.finetune.train import run

__all__ = ["run"]
