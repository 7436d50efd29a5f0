"""The `finetune_merge` kind: the base reloaded in full precision (float32, even after QLoRA: merging
into 4-bit weights would round the adapter away), the adapter applied and `merge_and_unload`ed, and the
result saved as an ordinary model (`merged/`: config, safetensors, tokenizer) that serves like a
downloaded causal LM."""

from __future__ import annotations

from typing import Any

import torch

from stratus_worker.finetune import base
from stratus_worker.inference import downloaded
from stratus_worker.inference.backends import default_cache_dir
from stratus_worker.runtime import JobContext, Outcome
from stratus_worker.storage import upload_file


def merged_model(params: dict[str, Any], ctx: JobContext) -> tuple[Any, Any]:
    from peft import PeftModel

    base_path = base.base_dir(dict(params["base"]), ctx.storage)
    model, tokenizer = base.load(base_path, four_bit=False, device=torch.device("cpu"))
    adapter_path = downloaded.fetch(ctx.storage, dict(params["adapter"]), default_cache_dir())
    return PeftModel.from_pretrained(model, adapter_path).merge_and_unload(), tokenizer


def run(ctx: JobContext) -> Outcome:
    ctx.events.progress("loading", epoch=0, total_epochs=0, step=0, total_steps=2, progress=0.0, metrics={})
    model, tokenizer = merged_model(ctx.params, ctx)
    ctx.events.progress("saving", epoch=0, total_epochs=0, step=1, total_steps=2, progress=50.0, metrics={})
    local = ctx.workdir / "merged"
    model.save_pretrained(local)
    tokenizer.save_pretrained(local)
    prefix = ctx.artifact_key("merged")
    files, size = [], 0
    for path in sorted(local.rglob("*")):
        if path.is_file():
            rel = path.relative_to(local).as_posix()
            upload_file(ctx.storage, f"{prefix}/{rel}", path, "application/octet-stream")
            files.append(rel)
            size += path.stat().st_size
    info = {
        "files": files,
        "size_mb": round(size / 1_000_000, 6),
        "architecture": {
            "class": str((model.config.architectures or ["LlamaForCausalLM"])[0]),
            "merged": True,
        },
    }
    return Outcome(
        {"parameters": sum(p.numel() for p in model.parameters())}, {}, {}, {"snapshot": prefix}, info
    )
