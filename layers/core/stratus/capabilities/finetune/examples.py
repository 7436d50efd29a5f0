"""Instruction datasets for LLM fine-tuning, read the same way by the API (to refuse a bad file before
queuing, with line numbers) and by the worker (to train on it). Pure Python: no tokenizer here.

Accepted shapes, one example per JSON Lines line (a JSON array of objects, or a CSV with a header row):
- `{"instruction", "input"?, "output"}` (Alpaca);
- `{"prompt", "completion"}` (OpenAI's legacy fine-tuning);
- `{"messages": [{"role", "content"}, ...]}` (chat; the last message is the assistant's).
Every example becomes a list of chat messages ending with the assistant's answer, the part trained on.
"""

from __future__ import annotations

import csv
import io
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

Messages = list[dict[str, str]]
ROLES = frozenset({"system", "user", "assistant"})
MAX_ERRORS_SHOWN = 20
MIN_EXAMPLES = 1
MIN_AUTO_EVAL, MAX_AUTO_EVAL = 50, 1000  # an automatic validation split: 10% of at least 50 examples


@dataclass
class ParsedExamples:
    examples: list[Messages] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, what is wrong)
    shape: str | None = None

    def summary(self) -> str:
        shown = "; ".join(f"line {line}: {why}" for line, why in self.errors[:MAX_ERRORS_SHOWN])
        more = len(self.errors) - MAX_ERRORS_SHOWN
        return shown + (f"; and {more} more" if more > 0 else "")


def to_messages(record: Any) -> tuple[Messages, str]:
    """(messages, shape) of one record; ValueError saying what is wrong."""
    if not isinstance(record, dict):
        raise ValueError("not a JSON object")
    if "messages" in record:
        return _chat(record["messages"]), "messages"
    if "instruction" in record:
        instruction, output = _text(record, "instruction"), _text(record, "output")
        extra = record.get("input")
        if extra is not None and not isinstance(extra, str):
            raise ValueError("'input' must be a string")
        user = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        return [{"role": "user", "content": user}, {"role": "assistant", "content": output}], "instruction"
    if "prompt" in record:
        prompt, completion = _text(record, "prompt"), _text(record, "completion")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}], "prompt"
    keys = ", ".join(sorted(map(str, record))) or "none"
    raise ValueError(f"needs instruction/output, prompt/completion or messages (it has: {keys})")


def _text(record: dict[str, Any], key: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"'{key}' must be a non-empty string")
    return value


def _chat(messages: Any) -> Messages:
    if not isinstance(messages, list) or len(messages) < 2:
        raise ValueError("'messages' must be a list of at least two messages")
    out: Messages = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES:
            raise ValueError(f"messages[{i}] needs a role of {', '.join(sorted(ROLES))}")
        if not isinstance(message.get("content"), str):
            raise ValueError(f"messages[{i}].content must be a string")
        out.append({"role": str(message["role"]), "content": str(message["content"])})
    if out[-1]["role"] != "assistant" or not out[-1]["content"].strip():
        raise ValueError("the last message must be the assistant's (the answer trained on), not empty")
    return out


def _records(data: bytes, fmt: str) -> Iterator[tuple[int, Any]]:
    """(line number, record or an Exception) for each example of the file."""
    text = data.decode("utf-8-sig", errors="replace")
    if fmt == "csv":
        reader = csv.DictReader(io.StringIO(text))
        for row in reader:
            yield reader.line_num, {k: v for k, v in row.items() if k is not None and v not in (None, "")}
        return
    if fmt == "json":
        try:
            parsed = json.loads(text)
        except ValueError as e:
            yield 1, ValueError(f"not valid JSON: {e}")
            return
        # A JSON array has no useful lines: the example's position stands in.
        yield from enumerate(parsed if isinstance(parsed, list) else [parsed], start=1)
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, json.loads(line)
        except ValueError as e:
            yield number, ValueError(f"not valid JSON ({e.args[0] if e.args else e})")


def parse(data: bytes, fmt: str) -> ParsedExamples:
    """Every example of the file, and every bad one with its line number (its position for JSON)."""
    result = ParsedExamples()
    for number, record in _records(data, fmt):
        if isinstance(record, Exception):
            result.errors.append((number, str(record)))
            continue
        if fmt == "csv" and isinstance(record, dict) and isinstance(record.get("messages"), str):
            try:
                record["messages"] = json.loads(record["messages"])
            except ValueError:
                result.errors.append((number, "'messages' is not valid JSON"))
                continue
        try:
            messages, shape = to_messages(record)
        except ValueError as e:
            result.errors.append((number, str(e)))
            continue
        result.shape = result.shape or shape
        result.examples.append(messages)
    return result


def chars_per_example(examples: list[Messages]) -> list[int]:
    return [sum(len(m["content"]) for m in example) for example in examples]


def held_out(
    examples: list[Messages], split: float | None, seed: int
) -> tuple[list[Messages], list[Messages]]:
    """(train, validation): `split` of the examples held out at random (seeded, so the API's estimate and
    the worker agree); None holds out 10% (at most MAX_AUTO_EVAL) when there are at least MIN_AUTO_EVAL
    examples, else none. Always keeps one to train on."""
    n = len(examples)
    if split is None:
        count = min(MAX_AUTO_EVAL, n // 10) if n >= MIN_AUTO_EVAL else 0
    else:
        count = min(n - 1, round(split * n)) if split > 0 else 0
    if count <= 0:
        return examples, []
    order = list(range(n))
    random.Random(seed).shuffle(order)
    chosen = set(order[:count])
    return [e for i, e in enumerate(examples) if i not in chosen], [examples[i] for i in sorted(chosen)]
