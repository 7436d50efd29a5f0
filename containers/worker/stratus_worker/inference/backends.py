"""Loaded models. One object per catalogue entry, built once by the engine and kept; each holds what its
tasks need and does the batched forward pass. Not thread-safe on their own (a fast tokenizer refuses
concurrent calls): the engine runs one batch at a time per model. `load_backend` builds them one at a
time in the process, and refuses a checkpoint that lacks weights of its model (see `loading`).

- `EmbeddingBackend`: a sentence-transformers directory loaded with plain transformers (`AutoModel`)
  plus the pooling its `1_Pooling/config.json` names and the `max_seq_length` of
  `sentence_bert_config.json`; the same numbers as `SentenceTransformer.encode`, one forward pass.
  Downloaded encoders without those files (a BERT checkpoint) are mean-pooled.
- `SequenceClassifierBackend`, `ExtractiveQABackend`, `TokenClassifierBackend`: downloaded models with
  a classification, span (QA) or token-classification (NER) head, read by `heads`.
- `SpacyBackend`: the spaCy pipeline with only what NER needs.
- `CausalLMBackend`: a GGUF causal LM. Dequantising a GGUF file (and converting its tokenizer) takes
  tens of seconds, so the first load saves the float32 model with `save_pretrained` under the model
  cache (`STRATUS_MODEL_CACHE`, default `~/.cache/stratus/models`) and later loads read that copy in
  under a second. Batched generation with per-row sampling settings, see `generate`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import math
import os
import random
import shutil
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch

from stratus_worker.inference import heads, loading, perception
from stratus_worker.inference.errors import ModelUnavailable
from stratus_worker.inference.registry import ModelSpec

log = logging.getLogger("stratus_worker.inference")
MAX_ADAPTERS = 32  # LoRA adapters kept loaded on one base (see CausalLMBackend.attach_adapter)

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "stratus" / "models"
PACK_WIDTH = 128  # tokens per packed row (at least the longest sequence)


def default_cache_dir() -> Path:
    return Path(os.environ.get("STRATUS_MODEL_CACHE") or DEFAULT_CACHE_DIR)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


class EmbeddingBackend:
    """Sentence embeddings: transformer, pooling, optional L2 normalisation."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        # The pooler's output is never used (embeddings pool the hidden states themselves), and a
        # checkpoint saved from a model without one (BertForMaskedLM) does not have it.
        self.model = loading.from_pretrained(
            AutoModel, path, model=spec.name, may_miss=("pooler.",), local_files_only=True
        )
        st_config = _read_json(path / "sentence_bert_config.json") or {}
        self.max_length = int(st_config.get("max_seq_length") or spec.max_sequence_length)
        self.pooling = "mean"
        modules = _read_json(path / "modules.json") or []
        for module in modules:
            if module.get("type", "").endswith("Pooling"):
                pooling = _read_json(path / module.get("path", "") / "config.json") or {}
                if pooling.get("pooling_mode_cls_token"):
                    self.pooling = "cls"
                elif pooling.get("pooling_mode_max_tokens"):
                    self.pooling = "max"
        self.normalizes = any(m.get("type", "").endswith("Normalize") for m in modules)
        self.dimension = int(self.model.config.hidden_size)
        config = self.model.config
        position_kind = getattr(config, "position_embedding_type", None) or "absolute"
        self.packs = config.model_type == "bert" and position_kind == "absolute"

    def encode(self, texts: Sequence[str], *, normalize: bool) -> tuple[torch.Tensor, list[bool]]:
        """(len(texts), dimension) float32 embeddings in one forward pass, and which were truncated.

        BERT models run packed: the sequences are laid end to end in rows of `PACK_WIDTH` tokens (or
        the longest sequence), each with its own positions and a block-diagonal attention mask, so a
        batch of mixed lengths costs its real tokens instead of `len(texts) x longest`; the result
        is the same as the padded pass (cosine 1 - 1e-7). Other architectures run padded.
        """
        enc = self.tokenizer(list(texts), truncation=True, max_length=self.max_length)
        if enc.encodings is not None:  # fast tokenizer: the cut-off tokens are kept as `overflowing`
            truncated = [bool(e.overflowing) for e in enc.encodings]
        else:
            lengths = [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]
            truncated = [n > self.max_length for n in lengths]
        with torch.inference_mode():
            pooled = self._packed(enc["input_ids"]) if self.packs else self._padded(enc)
            if normalize:
                pooled = torch.nn.functional.normalize(pooled, p=2, dim=1)
        return pooled, truncated

    def _padded(self, enc: Any) -> torch.Tensor:
        batch = self.tokenizer.pad(enc, return_tensors="pt")
        inputs = {k: batch[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in batch}
        hidden: torch.Tensor = self.model(**inputs).last_hidden_state
        mask: torch.Tensor = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        if self.pooling == "cls":
            return hidden[:, 0]
        if self.pooling == "max":
            return hidden.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        return (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)

    def _packed(self, sequences: list[list[int]]) -> torch.Tensor:
        width = max(PACK_WIDTH, max(len(ids) for ids in sequences))
        rows: list[list[int]] = []  # first fit, longest first
        fill: list[int] = []
        for index in sorted(range(len(sequences)), key=lambda i: -len(sequences[i])):
            size = len(sequences[index])
            row = next((r for r in range(len(rows)) if fill[r] + size <= width), None)
            if row is None:
                rows.append([])
                fill.append(0)
                row = len(rows) - 1
            rows[row].append(index)
            fill[row] += size
        shape = (len(rows), max(fill))
        input_ids = torch.full(shape, int(self.tokenizer.pad_token_id or 0), dtype=torch.long)
        positions = torch.zeros(shape, dtype=torch.long)
        segment = torch.full(shape, -1, dtype=torch.long)  # which sequence each token belongs to
        firsts = torch.zeros(len(sequences), dtype=torch.long)  # flat index of each sequence's first token
        for r, members in enumerate(rows):
            offset = 0
            for index in members:
                size = len(sequences[index])
                input_ids[r, offset : offset + size] = torch.tensor(sequences[index], dtype=torch.long)
                positions[r, offset : offset + size] = torch.arange(size)
                segment[r, offset : offset + size] = index
                firsts[index] = r * shape[1] + offset
                offset += size
        same = segment.unsqueeze(2) == segment.unsqueeze(1)
        # a padding token attends to itself only (a row of False would give NaN, unused anyway)
        mask = same & ((segment.unsqueeze(2) >= 0) | torch.eye(shape[1], dtype=torch.bool))
        hidden: torch.Tensor = self.model(
            input_ids=input_ids,
            position_ids=positions,
            token_type_ids=torch.zeros_like(input_ids),
            attention_mask=mask.unsqueeze(1),
        ).last_hidden_state
        flat = hidden.reshape(-1, hidden.shape[-1])
        owner = segment.reshape(-1)
        real = owner >= 0
        flat, owner = flat[real], owner[real]
        if self.pooling == "cls":
            return hidden.reshape(-1, hidden.shape[-1])[firsts]
        out = torch.zeros((len(sequences), flat.shape[1]), dtype=flat.dtype)
        if self.pooling == "max":
            spread = owner.unsqueeze(1).expand_as(flat)
            return out.scatter_reduce(0, spread, flat, reduce="amax", include_self=False)
        counts = torch.bincount(owner, minlength=len(sequences)).clamp(min=1).unsqueeze(1).to(flat.dtype)
        return out.index_add_(0, owner, flat) / counts


class SequenceClassifierBackend:
    """A downloaded model with a trained classification head: its own labels, softmax scores."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = loading.from_pretrained(
            AutoModelForSequenceClassification, path, model=spec.name, local_files_only=True
        )
        self.max_length = spec.max_sequence_length
        id2label = self.model.config.id2label or {}
        self.labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(self.model.config.num_labels)]

    def classify(self, texts: Sequence[str]) -> tuple[torch.Tensor, list[bool]]:
        """(len(texts), labels) probabilities in one padded forward pass, and which were truncated."""
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        lengths = [len(ids) for ids in self.tokenizer(list(texts))["input_ids"]]
        with torch.inference_mode():
            logits = self.model(**enc).logits
        return torch.softmax(logits.float(), dim=-1), [n > self.max_length for n in lengths]


class ExtractiveQABackend:
    """A downloaded model with a span head (SQuAD-style). Long contexts are read in overlapping windows
    (`stride` tokens shared), and the best span over all of a question's windows answers it."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from transformers import AutoModelForQuestionAnswering, AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = loading.from_pretrained(
            AutoModelForQuestionAnswering, path, model=spec.name, local_files_only=True
        )
        self.max_length = spec.max_sequence_length
        self.stride = max(8, self.max_length // 4)

    def answer(
        self, questions: Sequence[str], contexts: Sequence[str], *, max_answer_tokens: int
    ) -> list[tuple[int, int, float] | None]:
        """Per question: the answer's character span in its context and its probability, from one
        forward pass over every window of every context; None when nothing of the context fit."""
        enc = self.tokenizer(
            list(questions), list(contexts), truncation="only_second", max_length=self.max_length,
            stride=self.stride, return_overflowing_tokens=True, return_offsets_mapping=True,
            padding=True, return_tensors="pt",
        )  # fmt: skip
        owners = enc.pop("overflow_to_sample_mapping").tolist()
        offsets = enc.pop("offset_mapping").tolist()
        inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        with torch.inference_mode():
            out = self.model(**inputs)
        best: list[tuple[int, int, float] | None] = [None] * len(questions)
        best_log: list[float] = [float("-inf")] * len(questions)
        for window, owner in enumerate(owners):
            allowed = torch.tensor([sid == 1 for sid in enc.sequence_ids(window)])
            span = heads.best_span(
                out.start_logits[window], out.end_logits[window], allowed, max_answer_tokens
            )
            if span is not None and span.log_score > best_log[owner]:
                best_log[owner] = span.log_score
                start, end = offsets[window][span.start][0], offsets[window][span.end][1]
                best[owner] = (start, end, math.exp(span.log_score))
        return best


class TokenClassifierBackend:
    """A downloaded model with a token-classification head (NER): entities from its BIO labels."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from transformers import AutoModelForTokenClassification, AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = loading.from_pretrained(
            AutoModelForTokenClassification, path, model=spec.name, local_files_only=True
        )
        self.max_length = spec.max_sequence_length
        id2label = self.model.config.id2label or {}
        self.labels = [str(id2label.get(i, f"LABEL_{i}")) for i in range(self.model.config.num_labels)]

    def entities(self, texts: Sequence[str]) -> tuple[list[list[dict[str, object]]], list[bool]]:
        """Each text's entities (one padded forward pass), and which texts were cut to fit."""
        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=True,
            return_offsets_mapping=True, return_tensors="pt",
        )  # fmt: skip
        truncated = [bool(e.overflowing) for e in enc.encodings] if enc.encodings else [False] * len(texts)
        offsets = enc.pop("offset_mapping").tolist()
        inputs = {k: enc[k] for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc}
        with torch.inference_mode():
            probabilities = torch.softmax(self.model(**inputs).logits.float(), dim=-1)
        scores, indices = probabilities.max(dim=-1)
        results = []
        for row, text in enumerate(texts):
            tokens = [
                heads.Token(word, self.labels[int(indices[row, t])], float(scores[row, t]), *offsets[row][t])
                for t, word in enumerate(enc.word_ids(row))
            ]
            results.append(heads.group_entities(tokens, text))
        return results, truncated


class SpacyBackend:
    """A spaCy pipeline reduced to NER (and the tok2vec it listens to, if it shares one)."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        import spacy
        from spacy.util import load_config

        config = load_config(path / "config.cfg")
        pipeline = list(config["nlp"]["pipeline"])
        keep = {"ner"}
        if "Listener" in str(config["components"]["ner"]["model"]["tok2vec"].get("@architectures", "")):
            keep.add("tok2vec")
        self.spec = spec
        self.nlp = spacy.load(path, exclude=[name for name in pipeline if name not in keep])
        self.max_length = int(self.nlp.max_length)


@dataclass(frozen=True)
class Sampling:
    """One row of a generation batch."""

    max_new_tokens: int
    min_new_tokens: int = 0
    temperature: float = 0.0  # 0: greedy
    top_p: float = 1.0
    seed: int | None = None


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" (end-of-turn token) or "length" (max_new_tokens reached)
    token_logprobs: list[float]  # per completion token, under the model's own distribution

    @property
    def mean_probability(self) -> float:
        """exp(mean log-probability): the per-token probability of the completion (1.0 when empty)."""
        if not self.token_logprobs:
            return 1.0
        return math.exp(sum(self.token_logprobs) / len(self.token_logprobs))


class CausalLMBackend:
    """A chat model for generation, QA and summarisation."""

    def __init__(self, spec: ModelSpec, gguf_path: Path, cache_dir: Path) -> None:
        """`gguf_path` is a GGUF file, or a directory saved with save_pretrained (a downloaded model)."""
        import transformers

        self.spec = spec
        converted = gguf_path if gguf_path.is_dir() else _converted_dir(spec, gguf_path, cache_dir)
        model: Any
        if converted is not None and (converted / "config.json").exists():
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(converted, local_files_only=True)
            model = loading.from_pretrained(
                transformers.AutoModelForCausalLM, converted, model=spec.name, local_files_only=True,
                dtype=torch.float32,
            )  # fmt: skip
        else:
            log.info("dequantising %s (once; the float32 copy is cached)", gguf_path.name)
            self.tokenizer = transformers.AutoTokenizer.from_pretrained(
                gguf_path.parent, gguf_file=gguf_path.name
            )
            model = loading.from_pretrained(
                transformers.AutoModelForCausalLM, gguf_path.parent, model=spec.name,
                gguf_file=gguf_path.name, dtype=torch.float32,
            )  # fmt: skip
            if converted is not None:
                _save_converted(model, self.tokenizer, converted)
        self.model = model
        self.max_length = min(int(model.config.max_position_embeddings), spec.max_sequence_length)
        eos = model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
        if self.tokenizer.eos_token_id is not None:
            eos_ids.add(int(self.tokenizer.eos_token_id))
        self.eos_ids = sorted(eos_ids)
        pad = self.tokenizer.pad_token_id
        # Padding positions are masked out, so any id does when a model names neither (some base models).
        self.pad_id = int(pad if pad is not None else self.eos_ids[0] if self.eos_ids else 0)
        # Fine-tuned LoRA adapters served on this model (stratus_worker.inference.adapters): peft injects
        # their layers into `self.model` in place, so they share its weights; one runs at a time.
        self.peft: Any = None
        self.adapter_lock = threading.Lock()
        self._adapter_paths: OrderedDict[str, Path] = OrderedDict()  # least recently used first

    def attach_adapter(self, name: str, path: Path) -> None:
        """Load the adapter in `path` beside this model's weights as `name` (once; no copy of the base)."""
        with self.adapter_lock:
            self._load_adapter(name, path)

    def _load_adapter(self, name: str, path: Path) -> None:
        """Under the adapter lock. Beyond MAX_ADAPTERS the least recently used adapter is dropped (a few
        MB each); it is loaded again from its files when next used."""
        self._adapter_paths[name] = path
        self._adapter_paths.move_to_end(name)
        if self.peft is None:
            from peft import PeftModel

            self.peft = PeftModel.from_pretrained(self.model, path, adapter_name=name, is_trainable=False)
            self.peft.eval()
        elif name not in self.peft.peft_config:
            self.peft.load_adapter(path, adapter_name=name, is_trainable=False)
        while len(self.peft.peft_config) > MAX_ADAPTERS:
            oldest = next(n for n in self._adapter_paths if n != name and n in self.peft.peft_config)
            self.peft.delete_adapter(oldest)
            log.info("dropped adapter %s from %s (least recently used)", oldest, self.spec.name)

    @contextlib.contextmanager
    def adapter_applied(self, name: str | None = None) -> Iterator[None]:
        """`name`'s weights applied for the block (None: the base alone, every adapter switched off), under
        the adapter lock: anything that runs `self.model` itself (a streaming generate) does it in here."""
        with self.adapter_lock:
            if name is None:
                if self.peft is None:
                    yield
                else:
                    with self.peft.disable_adapter():
                        yield
                return
            if name not in self._adapter_paths:
                raise ModelUnavailable(f"Adapter '{name}' is not loaded on {self.spec.name}")
            self._load_adapter(name, self._adapter_paths[name])  # marks it used; reloads it if dropped
            self.peft.set_adapter(name)
            yield

    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        """The chat template applied to `messages`, ready for the assistant's turn. A base model
        without one (GPT-2, say) continues the messages' text instead."""
        if not getattr(self.tokenizer, "chat_template", None):
            text = "\n\n".join(message["content"] for message in messages) + "\n\n"
            return list(self.tokenizer(text)["input_ids"])
        enc: Any = self.tokenizer.apply_chat_template(
            messages, add_generation_prompt=True, tokenize=True, return_dict=True
        )
        return list(enc["input_ids"])

    def fit(self, text: str, max_tokens: int) -> tuple[str, bool]:
        """`text` cut (at a token boundary, as a prefix of the original) to at most `max_tokens` tokens."""
        if max_tokens <= 0:
            return "", bool(text)
        enc = self.tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offsets = enc["offset_mapping"]
        if len(offsets) <= max_tokens:
            return text, False
        return text[: offsets[max_tokens - 1][1]], True

    def generate(
        self, prompts: Sequence[list[int]], rows: Sequence[Sampling], *, adapter: str | None = None
    ) -> list[Completion]:
        """Every prompt in one batched `generate` call (left-padded), with the LoRA adapter `adapter`
        (attached with `attach_adapter`) applied, or the base alone.

        Each row keeps its own settings: a logits processor applies the row's minimum length (end of
        turn masked until then), picks the row's token (greedy at temperature 0, else sampled with
        the row's temperature and top-p from the row's own generator, seeded when `seed` is given,
        so a row's sample does not depend on the rest of the batch), records its log-probability
        and hands `generate` a one-hot score; a stopping criterion ends each row at its own budget.
        """
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        width = max(len(p) for p in prompts)
        input_ids = torch.full((len(prompts), width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(prompts), width), dtype=torch.long)
        for i, ids in enumerate(prompts):
            input_ids[i, width - len(ids) :] = torch.tensor(ids, dtype=torch.long)
            attention[i, width - len(ids) :] = 1
        picker = _RowPicker(rows, self.eos_ids, width)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max(r.max_new_tokens for r in rows),
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids,
            bos_token_id=self.model.generation_config.bos_token_id,
        )
        with self.adapter_applied(adapter), torch.inference_mode():
            sequences = self.model.generate(
                input_ids=input_ids,
                attention_mask=attention,
                generation_config=config,
                logits_processor=LogitsProcessorList([picker]),
                stopping_criteria=StoppingCriteriaList([_RowBudget([r.max_new_tokens for r in rows], width)]),
            )
        return _completions(self.tokenizer, sequences[:, width:], rows, picker, [len(p) for p in prompts])


class Seq2SeqBackend:
    """A downloaded encoder-decoder (T5, BART, Pegasus): summarization and generation, each row with
    its own sampling settings as in `CausalLMBackend.generate` (the decoder starts from one token)."""

    def __init__(self, spec: ModelSpec, path: Path) -> None:
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        self.spec = spec
        self.tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
        self.model = loading.from_pretrained(
            AutoModelForSeq2SeqLM, path, model=spec.name, local_files_only=True
        )
        self.max_length = spec.max_sequence_length
        # T5 was trained with task prefixes ("summarize: "); its config says which.
        params = (getattr(self.model.config, "task_specific_params", None) or {}).get("summarization") or {}
        self.summary_prefix = str(params.get("prefix") or "")
        eos = self.model.generation_config.eos_token_id
        self.eos_ids = sorted(set(eos if isinstance(eos, list) else [eos] if eos is not None else []))
        pad = self.tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else self.eos_ids[0] if self.eos_ids else 0)

    def generate(self, texts: Sequence[str], rows: Sequence[Sampling]) -> tuple[list[Completion], list[bool]]:
        """Every text in one batched `generate` call; the completions and which inputs were cut."""
        from transformers import GenerationConfig, LogitsProcessorList, StoppingCriteriaList

        enc = self.tokenizer(
            list(texts), truncation=True, max_length=self.max_length, padding=True, return_tensors="pt"
        )
        truncated = [bool(e.overflowing) for e in enc.encodings] if enc.encodings else [False] * len(texts)
        picker = _RowPicker(rows, self.eos_ids, 1)
        config = GenerationConfig(  # type: ignore[no-untyped-call]
            max_new_tokens=max(r.max_new_tokens for r in rows),
            do_sample=False,
            pad_token_id=self.pad_id,
            eos_token_id=self.eos_ids,
            decoder_start_token_id=self.model.generation_config.decoder_start_token_id,
        )
        with torch.inference_mode():
            sequences = self.model.generate(
                input_ids=enc["input_ids"],
                attention_mask=enc["attention_mask"],
                generation_config=config,
                logits_processor=LogitsProcessorList([picker]),
                stopping_criteria=StoppingCriteriaList([_RowBudget([r.max_new_tokens for r in rows], 1)]),
            )
        prompt_tokens = [int(n) for n in enc["attention_mask"].sum(dim=1).tolist()]
        return _completions(self.tokenizer, sequences[:, 1:], rows, picker, prompt_tokens), truncated


def _completions(
    tokenizer: Any,
    generated: torch.Tensor,
    rows: Sequence[Sampling],
    picker: _RowPicker,
    prompt_tokens: list[int],
) -> list[Completion]:
    """Each row's new tokens up to its end of turn (or its budget), decoded."""
    completions = []
    for i, row in enumerate(rows):
        tokens = generated[i].tolist()[: row.max_new_tokens]
        stop = next((k for k, token in enumerate(tokens) if token in picker.eos), None)
        kept = tokens if stop is None else tokens[:stop]
        completions.append(
            Completion(
                text=str(tokenizer.decode(kept, skip_special_tokens=True)).strip(),
                prompt_tokens=prompt_tokens[i],
                completion_tokens=len(kept),
                finish_reason="length" if stop is None else "stop",
                token_logprobs=picker.logprobs[i][: len(kept)],
            )
        )
    return completions


class _RowPicker:
    """Logits processor choosing each row's next token with the row's own settings (see generate)."""

    def __init__(self, rows: Sequence[Sampling], eos_ids: Sequence[int], prompt_width: int) -> None:
        self.rows = list(rows)
        self.eos = set(eos_ids)
        self._eos_index = torch.tensor(sorted(self.eos), dtype=torch.long)
        self.prompt_width = prompt_width
        self.logprobs: list[list[float]] = [[] for _ in rows]
        self.generators: list[torch.Generator | None] = []
        for row in rows:
            if row.temperature > 0:
                seed = row.seed if row.seed is not None else random.SystemRandom().getrandbits(63)
                self.generators.append(torch.Generator().manual_seed(seed))
            else:
                self.generators.append(None)

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        step = input_ids.shape[1] - self.prompt_width
        scores = scores.float()
        for i, row in enumerate(self.rows):
            if step < row.min_new_tokens:
                scores[i, self._eos_index] = float("-inf")
        logprobs = torch.log_softmax(scores, dim=-1)
        chosen = scores.argmax(dim=-1)
        for i, row in enumerate(self.rows):
            generator = self.generators[i]
            if generator is None:
                continue
            probs = torch.softmax(scores[i] / row.temperature, dim=-1)
            if row.top_p < 1.0:
                ordered, order = torch.sort(probs, descending=True)
                outside = torch.cumsum(ordered, dim=0) - ordered >= row.top_p  # keeps at least one
                probs = probs.scatter(0, order[outside], 0.0)
            chosen[i] = torch.multinomial(probs, 1, generator=generator)[0]
        picked = logprobs.gather(1, chosen.unsqueeze(1)).squeeze(1).tolist()
        for i, value in enumerate(picked):
            self.logprobs[i].append(value)
        onehot = torch.full_like(scores, float("-inf"))
        onehot.scatter_(1, chosen.unsqueeze(1), 0.0)
        return onehot


class _RowBudget:
    """Stopping criterion: row i is done after budgets[i] new tokens."""

    def __init__(self, budgets: Sequence[int], prompt_width: int) -> None:
        self.budgets = torch.tensor(list(budgets))
        self.prompt_width = prompt_width

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        return (input_ids.shape[1] - self.prompt_width) >= self.budgets


def _converted_dir(spec: ModelSpec, gguf_path: Path, cache_dir: Path) -> Path | None:
    """Where the float32 copy of a GGUF model lives (None when the cache cannot be created)."""
    import transformers

    key = f"{gguf_path.name}:{gguf_path.stat().st_size}:{transformers.__version__}"
    slug = spec.name.replace("/", "--")
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        log.warning(
            "model cache %s unavailable (%s): GGUF models are dequantised at every load", cache_dir, e
        )
        return None
    return cache_dir / f"{slug}-{hashlib.sha256(key.encode()).hexdigest()[:12]}"


def _save_converted(model: Any, tokenizer: Any, target: Path) -> None:
    """Save the dequantised model next to its final place, then rename (atomic; a concurrent loader
    that finishes first wins, and ours is discarded)."""
    tmp = Path(tempfile.mkdtemp(prefix=".converting-", dir=target.parent))
    try:
        model.hf_quantizer = None  # what save_pretrained needs for a model loaded from GGUF
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared
        os.rename(tmp, target)
    except OSError as e:
        log.warning("could not cache the converted model in %s: %s", target, e)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


Backend = (
    EmbeddingBackend
    | SequenceClassifierBackend
    | ExtractiveQABackend
    | TokenClassifierBackend
    | SpacyBackend
    | CausalLMBackend
    | Seq2SeqBackend
)


def load_backend(spec: ModelSpec, cache_dir: Path) -> Backend:
    """Load one catalogue entry from its package (ModelUnavailable if it is not installed, or if its
    checkpoint lacks weights). One load at a time in the process: see `loading`."""
    if spec.loader != "spacy" and spec.loader not in perception.LOADERS:  # transformers' models only
        loading.prepare()
    path: Path | None = None
    try:
        with loading.LOAD_LOCK:
            # Found under the lock: another load may be importing the same package (OpenCV's
            # detector and the face model share cv2, which replaces itself in sys.modules while it
            # bootstraps, and a lookup meanwhile raises ValueError).
            path = spec.local_path()
            return _construct(spec, path, cache_dir)
    except ImportError as e:
        raise ModelUnavailable(f"Model '{spec.name}' needs a package that is not installed: {e}") from e
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"Model '{spec.name}' could not be loaded from {path}: {e}") from e


def _construct(spec: ModelSpec, path: Path, cache_dir: Path) -> Backend:
    if spec.loader in perception.LOADERS:
        return cast(Backend, perception.load(spec.loader, path))
    if spec.loader in ("sentence-transformer", "hub-encoder"):
        return EmbeddingBackend(spec, path)
    if spec.loader == "hub-sequence-classifier":
        return SequenceClassifierBackend(spec, path)
    if spec.loader == "hub-seq2seq":
        return Seq2SeqBackend(spec, path)
    if spec.loader == "hub-extractive-qa":
        return ExtractiveQABackend(spec, path)
    if spec.loader == "hub-token-classifier":
        return TokenClassifierBackend(spec, path)
    if spec.loader == "hub-causal-lm" and not path.is_dir():
        raise ModelUnavailable(f"Model '{spec.name}': {path} is not a model directory")
    if spec.loader == "spacy":
        return SpacyBackend(spec, path)
    if spec.loader == "lora-adapter":  # served on its base's backend: InferenceEngine.load builds it
        raise ModelUnavailable(f"Adapter '{spec.name}' is loaded onto its base by the engine")
    return CausalLMBackend(spec, path, cache_dir)
