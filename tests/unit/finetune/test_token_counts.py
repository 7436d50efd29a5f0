"""The API's token counts (tokenizers + Jinja2, no transformers) equal what the worker encodes with
transformers' tokenizer and apply_chat_template: on SmolLM2's shipped files, on the tiny Llama's, and on
a base without a chat template."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from stratus.capabilities.finetune import tokens
from stratus.capabilities.finetune.examples import Messages, parse
from stratus_worker.finetune.data import IGNORE, encode

ROWS = [
    {
        "instruction": "What is the capital of France?",
        "input": "Answer briefly.",
        "output": "Paris. héllo 😀",
    },
    {"prompt": "  leading spaces\nand a newline", "completion": "x" * 200},
    {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Hi <|im_start|> there"},
            {"role": "assistant", "content": "Hello!"},
            {"role": "user", "content": "Again?"},
            {"role": "assistant", "content": "Yes."},
        ]
    },
]


def _examples() -> list[Messages]:
    return parse("\n".join(json.dumps(r) for r in ROWS).encode(), "jsonl").examples


def _worker_lengths(directory: Path) -> list[tuple[int, int]]:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory)
    out = []
    for messages in _examples():
        encoded = encode(tokenizer, messages, 100_000)
        out.append((encoded.labels.count(IGNORE), encoded.full_length))
    return out


def _files(directory: Path) -> tokens.TokenizerFiles:
    template = directory / "chat_template.jinja"
    return tokens.from_files(
        (directory / "tokenizer.json").read_bytes(),
        (directory / "tokenizer_config.json").read_bytes(),
        template.read_bytes() if template.is_file() else None,
    )


def test_smollm2_counts_match_the_worker(tmp_path: Path) -> None:
    shipped = tokens.SHIPPED / "HuggingFaceTB--SmolLM2-135M-Instruct"
    for name in ("tokenizer_config.json", "chat_template.jinja"):
        (tmp_path / name).write_bytes((shipped / name).read_bytes())
    (tmp_path / "tokenizer.json").write_bytes(gzip.decompress((shipped / "tokenizer.json.gz").read_bytes()))
    files = tokens.shipped("HuggingFaceTB/SmolLM2-135M-Instruct")
    assert files is not None
    assert tokens.TokenCounter(files).lengths(_examples()) == _worker_lengths(tmp_path)


def test_tiny_llama_counts_match_the_worker(tiny_llama_dir: Path) -> None:
    assert tokens.TokenCounter(_files(tiny_llama_dir)).lengths(_examples()) == _worker_lengths(tiny_llama_dir)


def test_a_base_without_a_chat_template_counts_plain_turns(tiny_llama_dir: Path, tmp_path: Path) -> None:
    for path in tiny_llama_dir.iterdir():
        if path.name != "chat_template.jinja":
            (tmp_path / path.name).write_bytes(path.read_bytes())
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config.pop("chat_template", None)
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    counter = tokens.TokenCounter(_files(tmp_path))
    assert not counter.has_template
    assert counter.lengths(_examples()) == _worker_lengths(tmp_path)


def test_statistics_and_a_named_template_list(tiny_llama_dir: Path) -> None:
    files = _files(tiny_llama_dir)
    template = files.chat_template or str(files.config.get("chat_template"))
    listed = tokens.TokenizerFiles(files.tokenizer_json, {**files.config, "chat_template": [
        {"name": "tool_use", "template": "{{ raise_exception('not this one') }}"},
        {"name": "default", "template": template},
    ]}, None)  # fmt: skip
    counter = tokens.TokenCounter(listed)
    stats = tokens.statistics(counter, _examples(), max_length=20)
    fulls = sorted(full for _, full in counter.lengths(_examples()))
    assert (stats["min"], stats["max"]) == (fulls[0], fulls[-1])
    assert stats["truncated"] == sum(1 for n in fulls if n > 20)
    assert stats["total"] == sum(min(n, 20) for n in fulls) and stats["sampled"] is None


@pytest.mark.parametrize("present", [["tokenizer.json", "config.json"], ["tokenizer.model"]])
def test_snapshot_files(present: list[str]) -> None:
    wanted = tokens.snapshot_files(present)
    assert (wanted is None) == ("tokenizer.json" not in present)
