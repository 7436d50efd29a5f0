"""Exact token counts of a fine-tuning dataset at the API, before a job is queued, with the base model's own
tokenizer and chat template and without transformers (which an API Lambda never imports).

What transformers' `apply_chat_template(..., tokenize=True)` does, from the same files: the template is
rendered with Jinja2 in a sandbox (trim_blocks, lstrip_blocks, loop controls, `raise_exception`,
`strftime_now` and a `tojson` filter, as transformers sets it up) and the text is encoded with the
`tokenizers` library from `tokenizer.json` (special tokens in the text are matched, none are added).
Both are small (tokenizers ~35 ms to import, Jinja2's sandbox ~0.2 s) and imported on the first count,
not when the Lambda starts.

Where the files come from:
- a built-in base: shipped here (`tokenizers/<name with / as -->/`: tokenizer.json gzipped,
  tokenizer_config.json, chat_template.jinja), written from the worker's own conversion of the GGUF
  model, so the API counts what the worker trains on;
- a downloaded base: its snapshot in object storage (tokenizer.json, tokenizer_config.json and
  chat_template.jinja when present).
A base without a `tokenizer.json` (a slow, SentencePiece-only tokenizer) cannot be counted here: the
API then estimates from characters and says so, and the worker counts exactly before training (its
first training event and final metrics carry the same statistics).

The worker's encoding is the reference (stratus_worker.finetune.data.encode): the whole conversation is
the template applied to all messages; the prompt is the template applied to all but the last with the
generation prompt; a model without a template gets the turns as plain text, each followed by a blank
line, and the EOS token.
"""

from __future__ import annotations

import gzip
import json
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from stratus.capabilities.finetune.examples import Messages

SHIPPED = Path(__file__).resolve().parent / "tokenizers"
MAX_TOKENIZER_BYTES = 64 * 1024 * 1024
MAX_EXACT = 20_000  # examples counted one by one; a larger dataset is counted on a sample this size
SPECIAL_KEYS = ("bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token")


@dataclass(frozen=True)
class TokenizerFiles:
    tokenizer_json: bytes
    config: dict[str, Any]
    chat_template: str | None


def shipped(name: str) -> TokenizerFiles | None:
    """The shipped tokenizer of the built-in model `name`, if there is one."""
    directory = SHIPPED / name.replace("/", "--")
    packed = directory / "tokenizer.json.gz"
    if not packed.is_file():
        return None
    config_path, template_path = directory / "tokenizer_config.json", directory / "chat_template.jinja"
    config = json.loads(config_path.read_text()) if config_path.is_file() else {}
    template = template_path.read_text() if template_path.is_file() else None
    return TokenizerFiles(gzip.decompress(packed.read_bytes()), config, template)


def from_files(tokenizer_json: bytes, config_json: bytes | None, template: bytes | None) -> TokenizerFiles:
    config = json.loads(config_json) if config_json else {}
    return TokenizerFiles(
        tokenizer_json, config if isinstance(config, dict) else {}, template.decode() if template else None
    )


def _template_text(files: TokenizerFiles) -> str | None:
    """chat_template.jinja wins (transformers 5 writes it); else tokenizer_config's, which may be a list
    of named templates (the `default` one is applied)."""
    if files.chat_template:
        return files.chat_template
    value = files.config.get("chat_template")
    if isinstance(value, list):
        named = {str(t.get("name")): t.get("template") for t in value if isinstance(t, dict)}
        value = named.get("default")
    return value if isinstance(value, str) and value else None


def _special(value: Any) -> str | None:
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


class TokenCounter:
    """(prompt tokens, conversation tokens) of an example, as the worker will encode it."""

    def __init__(self, files: TokenizerFiles) -> None:
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_str(files.tokenizer_json.decode("utf-8"))
        self._specials = {key: _special(files.config.get(key)) for key in SPECIAL_KEYS}
        template = _template_text(files)
        self._template = _compile(template) if template else None
        self.has_template = self._template is not None

    def _count(self, texts: list[str]) -> list[int]:
        return [len(e.ids) for e in self._tokenizer.encode_batch(texts, add_special_tokens=False)]

    def _render(self, messages: Messages, *, generation_prompt: bool) -> str:
        assert self._template is not None
        return str(
            self._template.render(
                messages=messages, add_generation_prompt=generation_prompt, **self._specials
            )
        )

    def lengths(self, items: list[Messages]) -> list[tuple[int, int]]:
        """(prompt tokens, conversation tokens) of each example."""
        if self._template is not None:
            prompts = self._count([self._render(m[:-1], generation_prompt=True) for m in items])
            fulls = self._count([self._render(m, generation_prompt=False) for m in items])
        else:
            prompts = self._count(["".join(f"{m['content']}\n\n" for m in x[:-1]) for x in items])
            fulls = [n + 1 for n in self._count(["".join(f"{m['content']}\n\n" for m in x) for x in items])]
        return list(zip(prompts, fulls, strict=True))


def _compile(template: str) -> Any:
    from jinja2.ext import loopcontrols
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        from jinja2.exceptions import TemplateError

        raise TemplateError(message)

    def tojson(value: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:  # fmt: skip
        return json.dumps(
            value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
        )

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(template)


def statistics(counter: TokenCounter, items: list[Messages], max_length: int) -> dict[str, Any]:
    """min, mean, p95 and max tokens per example (before truncation), how many `max_length` cuts, and how
    many keep none of their answer (the prompt alone fills max_length: the worker skips those). Up to
    MAX_EXACT examples are all counted; a larger dataset is counted on a seeded sample of that many
    (`sampled`), its totals scaled."""
    n = len(items)
    sample = items if n <= MAX_EXACT else random.Random(0).sample(items, MAX_EXACT)
    pairs = counter.lengths(sample)
    lengths = sorted(full for _, full in pairs)
    scale = n / len(sample)
    return {
        "min": lengths[0],
        "mean": round(sum(lengths) / len(lengths), 1),
        "p95": lengths[min(len(lengths) - 1, math.ceil(0.95 * len(lengths)) - 1)],
        "max": lengths[-1],
        "total": round(scale * sum(min(x, max_length) for x in lengths)),
        "truncated": round(scale * sum(1 for x in lengths if x > max_length)),
        "no_answer_within_max_length": round(scale * sum(1 for prompt, _ in pairs if prompt >= max_length)),
        "sampled": len(sample) if len(sample) < n else None,
    }


def snapshot_files(files: list[str]) -> Mapping[str, str] | None:
    """The tokenizer files of a downloaded snapshot to read from storage, or None when it has no
    tokenizer.json (then only the worker counts exactly)."""
    if "tokenizer.json" not in files:
        return None
    wanted = {"tokenizer": "tokenizer.json"}
    for key, name in (("config", "tokenizer_config.json"), ("template", "chat_template.jinja")):
        if name in files:
            wanted[key] = name
    return wanted
