"""Examples to token ids: the base model's own chat template, loss on the assistant's answer only.

The prompt is the template applied to every message but the last, with the generation prompt; the
answer is what the template adds for the last message. Only the answer's tokens carry labels, so
the adapter learns to answer, not to repeat questions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from stratus.capabilities.finetune.examples import Messages

IGNORE = -100


@dataclass
class Encoded:
    input_ids: list[int]
    labels: list[int]
    full_length: int  # before truncation at max_length


def _template(tokenizer: Any, messages: Messages, *, generation_prompt: bool) -> list[int]:
    if getattr(tokenizer, "chat_template", None):
        enc = tokenizer.apply_chat_template(
            messages, add_generation_prompt=generation_prompt, tokenize=True, return_dict=True
        )
        return list(enc["input_ids"])
    # A base model without a template: the turns as plain text, each ending with the EOS token.
    text = "".join(f"{m['content']}\n\n" for m in messages)
    ids = list(tokenizer(text, add_special_tokens=False)["input_ids"])
    return ids if generation_prompt else [*ids, int(tokenizer.eos_token_id)]


def encode(tokenizer: Any, messages: Messages, max_length: int) -> Encoded:
    prompt = _template(tokenizer, messages[:-1], generation_prompt=True)
    full = _template(tokenizer, messages, generation_prompt=False)
    if full[: len(prompt)] != prompt:  # a template that rewrites earlier turns: train on all of it
        prompt = []
    labels = [IGNORE] * len(prompt) + full[len(prompt) :]
    return Encoded(full[:max_length], labels[:max_length], len(full))


def token_stats(encoded: list[Encoded], max_length: int) -> dict[str, float]:
    """min, mean, p95, max tokens per example (before truncation), and how many were cut."""
    lengths = sorted(e.full_length for e in encoded)
    if not lengths:
        return {}
    p95 = lengths[min(len(lengths) - 1, math.ceil(0.95 * len(lengths)) - 1)]
    return {
        "examples": float(len(lengths)),
        "tokens_min": float(lengths[0]),
        "tokens_mean": round(sum(lengths) / len(lengths), 2),
        "tokens_p95": float(p95),
        "tokens_max": float(lengths[-1]),
        "tokens_total": float(sum(min(n, max_length) for n in lengths)),
        "truncated": float(sum(1 for n in lengths if n > max_length)),
    }


def collate(batch: list[Encoded], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded tensors; padding is masked out of attention and loss."""
    width = max(len(e.input_ids) for e in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    labels = torch.full((len(batch), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for i, e in enumerate(batch):
        n = len(e.input_ids)
        ids[i, :n] = torch.tensor(e.input_ids)
        labels[i, :n] = torch.tensor(e.labels)
        mask[i, :n] = 1
    return {"input_ids": ids, "attention_mask": mask, "labels": labels}
