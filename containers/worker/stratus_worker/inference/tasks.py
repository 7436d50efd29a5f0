"""The six tasks: input validation (cheap, no model needed) and the batched run on a loaded backend.

Every run takes all of a call's items through ONE forward pass (one `generate` call for the language
model tasks) and returns one output per item, in order. Every output carries `truncated`: true when
the item's text was cut to fit the model (the cut keeps the beginning of the text).

Limits and defaults are the API's, from stratus.capabilities.nlp.spec.

- embeddings: {text} -> {embedding, dimension}. Option `normalize` (L2-normalised; default off).
- classification: {text, candidate_labels?} -> {labels: [{label, score}] best first, method}. Zero-shot
  by embedding similarity: the text and one hypothesis per label ("This text is about {label}.") are
  embedded in the same forward pass; scores are softmax(cosine / temperature) over the labels
  (option `temperature`, default 0.05; option `hypothesis_template` with a `{label}` placeholder).
  Without candidate labels the task is sentiment: labels positive/negative with the hypothesis
  "The sentiment of this text is {label}.".
- ner: {text} -> {entities: [{type, text, start, end, score}]}; `text == input[start:end]`. spaCy's
  NER gives no confidence, so `score` is always null.
- generation: {prompt, max_tokens, temperature} -> {text, usage, finish_reason}; the prompt is
  the user turn of the model's chat template; temperature 0 is greedy. Options `seed` (a row's sample
  then depends only on its prompt, settings and the seed), `top_p` (default 1).
  `usage.completion_tokens` counts the returned text's tokens (not the end-of-turn token);
  `finish_reason` is "stop" (the model ended its turn) or "length" (max_tokens reached).
- qa: {question, context} -> {answer, score, start, end, match, generated}. The model is told to
  answer with a short exact quote from the context (greedy); its reply (`generated`, lead-ins such
  as "Answer:" and quotes stripped) is then located in the context: exactly, else
  case-insensitively, else the context span with the best F1 of content words with the reply
  (function words and the question's own words left out). The answer is always
  `context[start:end]` (empty, at 0, with score 0 and match "none" when nothing overlaps). `score`
  is the model's per-token probability of its reply (exp of the mean log-probability, at
  temperature 1) times the match quality (1 for exact and case-insensitive matches, the F1 for an
  overlap span); `match` says which. Option `max_answer_tokens` (default 32). The context is what
  gets truncated when the prompt is too long.
- summarization: {text, max_length, min_length} -> {summary_text, usage, finish_reason}; lengths
  are in generated tokens (`max_new_tokens` / a minimum before the end of turn is allowed).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import torch

from stratus.capabilities.nlp import spec as nlp
from stratus.capabilities.nlp.spec import TASKS
from stratus.schemas.options import IntOption
from stratus_worker.inference import perception
from stratus_worker.inference.backends import (
    Backend,
    CausalLMBackend,
    Completion,
    EmbeddingBackend,
    ExtractiveQABackend,
    Sampling,
    Seq2SeqBackend,
    SequenceClassifierBackend,
    SpacyBackend,
    TokenClassifierBackend,
)
from stratus_worker.inference.errors import InvalidInput

Item = dict[str, Any]

DEFAULT_TEMPLATE = "This text is about {label}."
SENTIMENT_LABELS = ("positive", "negative")
SENTIMENT_TEMPLATE = "The sentiment of this text is {label}."
QA_SYSTEM = (
    "You answer questions about a text. Reply with the shortest exact quote from the text that answers "
    "the question, copied word for word, and nothing else."
)
SUMMARY_SYSTEM = "You are a helpful assistant that writes short, faithful summaries."


# ----------------------------------------------------------------------------------------- validation


@dataclass(frozen=True)
class Option:
    kind: type
    default: Any
    check: Callable[[Any], bool] = lambda _: True
    rule: str = ""


OPTIONS: dict[str, dict[str, Option]] = {
    "embeddings": {"normalize": Option(bool, nlp.NORMALIZE_DEFAULT)},
    "classification": {
        "temperature": Option(float, 0.05, lambda v: v > 0, "> 0"),
        "hypothesis_template": Option(str, None, lambda v: "{label}" in v, "containing {label}"),
    },
    "ner": {},
    "generation": {
        "seed": Option(int, None),
        "top_p": Option(float, 1.0, lambda v: 0 < v <= 1, "in (0, 1]"),
    },
    "qa": {"max_answer_tokens": Option(int, 32, lambda v: 1 <= v <= 256, "in [1, 256]")},
    "summarization": {},
}


def check_task(task: str) -> None:
    from stratus_worker.inference.errors import UnknownTask

    if task not in TASKS and task not in perception.TASKS:
        raise UnknownTask(task, (*TASKS, *perception.TASKS))


def validate(task: str, items: Sequence[Any], options: Mapping[str, Any] | None) -> tuple[list[Item], Item]:
    """Items and options with defaults filled in; InvalidInput naming the first problem."""
    check_task(task)
    if task in perception.TASKS:
        if not isinstance(items, list | tuple):
            raise InvalidInput("inputs must be a list of objects")
        return perception.validate(task, items, options)
    if not isinstance(items, list | tuple):
        raise InvalidInput("inputs must be a list of objects")
    clean_options = _options(task, options or {})
    prepared = []
    for index, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise InvalidInput(f"inputs[{index}] must be an object")
        prepared.append(_ITEMS[task](item, f"inputs[{index}]"))
    return prepared, clean_options


def _options(task: str, options: Mapping[str, Any]) -> Item:
    if not isinstance(options, Mapping):
        raise InvalidInput("options must be an object")
    allowed = OPTIONS[task]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        names = ", ".join(sorted(allowed)) or "none"
        raise InvalidInput(f"Unknown option(s) for {task}: {', '.join(unknown)} (allowed: {names})")
    clean = {}
    for name, option in allowed.items():
        value = options.get(name, option.default)
        if value is not None:
            value = _typed(value, option.kind, f"options.{name}")
            if not option.check(value):
                raise InvalidInput(f"options.{name} must be {option.rule}")
        clean[name] = value
    return clean


def _typed(value: Any, kind: type, where: str) -> Any:
    if kind is bool:
        if not isinstance(value, bool):
            raise InvalidInput(f"{where} must be true or false")
        return value
    if kind is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"{where} must be an integer")
        return value
    if kind is float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise InvalidInput(f"{where} must be a number")
        return float(value)
    if not isinstance(value, str):
        raise InvalidInput(f"{where} must be a string")
    return value


def _text(item: Mapping[str, Any], key: str, where: str, *, required: bool = True) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidInput(f"{where}.{key} must be a {'non-empty ' if required else ''}string")
    if required and not value.strip():
        raise InvalidInput(f"{where}.{key} must be a non-empty string")
    return value


def _int(item: Mapping[str, Any], key: str, where: str, limit: IntOption) -> int:
    value = item.get(key, limit.default)
    if value is None:
        value = limit.default
    value = _typed(value, int, f"{where}.{key}")
    if not limit.ge <= value <= limit.le:
        raise InvalidInput(f"{where}.{key} must be between {limit.ge} and {limit.le}")
    return int(value)


def _text_item(item: Mapping[str, Any], where: str) -> Item:
    return {"text": _text(item, "text", where, required=False)}


def _classification_item(item: Mapping[str, Any], where: str) -> Item:
    labels = item.get("candidate_labels")
    count = nlp.CANDIDATE_LABELS
    if labels is not None and (
        not isinstance(labels, list)
        or not count.min <= len(labels) <= count.max
        or not all(isinstance(label, str) and label.strip() for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise InvalidInput(
            f"{where}.candidate_labels must be a list of {count.min} to {count.max} distinct non-empty strings"
        )
    return {"text": _text(item, "text", where, required=False), "candidate_labels": labels}


def _generation_item(item: Mapping[str, Any], where: str) -> Item:
    limit = nlp.TEMPERATURE
    temperature = _typed(item.get("temperature", limit.default), float, f"{where}.temperature")
    if not limit.ge <= temperature <= limit.le:
        raise InvalidInput(f"{where}.temperature must be between {limit.ge:g} and {limit.le:g}")
    return {
        "prompt": _text(item, "prompt", where),
        "max_tokens": _int(item, "max_tokens", where, nlp.MAX_TOKENS),
        "temperature": temperature,
    }


def _qa_item(item: Mapping[str, Any], where: str) -> Item:
    return {"question": _text(item, "question", where), "context": _text(item, "context", where)}


def _summary_item(item: Mapping[str, Any], where: str) -> Item:
    max_length = _int(item, "max_length", where, nlp.SUMMARY_MAX_LENGTH)
    min_length = _int(item, "min_length", where, nlp.SUMMARY_MIN_LENGTH)
    if min_length > max_length:
        raise InvalidInput(f"{where}.min_length ({min_length}) exceeds max_length ({max_length})")
    return {"text": _text(item, "text", where), "max_length": max_length, "min_length": min_length}


_ITEMS: dict[str, Callable[[Mapping[str, Any], str], Item]] = {
    "embeddings": _text_item,
    "classification": _classification_item,
    "ner": _text_item,
    "generation": _generation_item,
    "qa": _qa_item,
    "summarization": _summary_item,
}


# ---------------------------------------------------------------------------------------------- runs


def run(task: str, backend: Backend, items: list[Item], options: Item) -> list[Item]:
    """Validated items through `backend` in one batch."""
    if not items:
        return []
    if task in perception.TASKS:
        return perception.run(task, backend, items, options)
    return _RUNS[task](backend, items, options)


def _embeddings(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    model = cast(EmbeddingBackend, backend)
    vectors, truncated = model.encode([item["text"] for item in items], normalize=options["normalize"])
    return [
        {"embedding": vector, "dimension": model.dimension, "truncated": cut}
        for vector, cut in zip(vectors.tolist(), truncated, strict=True)
    ]


def _classification(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    if isinstance(backend, SequenceClassifierBackend):
        return _head_classification(backend, items)
    model = cast(EmbeddingBackend, backend)
    plans = []  # per item: (labels, template)
    hypotheses: dict[str, int] = {}
    for item in items:
        if item["candidate_labels"]:
            labels, template = (
                list(item["candidate_labels"]),
                options["hypothesis_template"] or DEFAULT_TEMPLATE,
            )
        else:
            labels, template = list(SENTIMENT_LABELS), options["hypothesis_template"] or SENTIMENT_TEMPLATE
        plans.append((labels, template))
        for label in labels:
            hypotheses.setdefault(template.replace("{label}", label), len(items) + len(hypotheses))
    texts = [item["text"] for item in items] + list(hypotheses)
    vectors, truncated = model.encode(texts, normalize=True)  # texts and hypotheses: one forward pass
    outputs = []
    for i, (labels, template) in enumerate(plans):
        rows = torch.tensor([hypotheses[template.replace("{label}", label)] for label in labels])
        cosine = vectors[rows] @ vectors[i]
        scores = torch.softmax(cosine / options["temperature"], dim=0).tolist()
        ranked = sorted(zip(labels, scores, strict=True), key=lambda pair: -pair[1])
        outputs.append(
            {
                "labels": [{"label": label, "score": score} for label, score in ranked],
                "method": "zero-shot-embedding-similarity",
                "hypothesis_template": template,
                "truncated": truncated[i],
            }
        )
    return outputs


def _head_classification(model: SequenceClassifierBackend, items: list[Item]) -> list[Item]:
    """The model's own classifier: its labels, whatever candidate labels were sent (refused earlier)."""
    probabilities, truncated = model.classify([item["text"] for item in items])
    outputs = []
    for row, cut in zip(probabilities.tolist(), truncated, strict=True):
        ranked = sorted(zip(model.labels, row, strict=True), key=lambda pair: -pair[1])
        outputs.append(
            {
                "labels": [{"label": label, "score": score} for label, score in ranked],
                "method": "sequence-classification",
                "truncated": cut,
            }
        )
    return outputs


def _ner(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    if isinstance(backend, TokenClassifierBackend):
        found, truncated = backend.entities([item["text"] for item in items])
        return [
            {"entities": entities, "truncated": cut} for entities, cut in zip(found, truncated, strict=True)
        ]
    model = cast(SpacyBackend, backend)
    texts = [item["text"][: model.max_length] for item in items]
    outputs = []
    for item, doc in zip(items, model.nlp.pipe(texts, batch_size=len(texts)), strict=True):
        entities = [
            {
                "type": ent.label_,
                "text": ent.text,
                "start": ent.start_char,
                "end": ent.end_char,
                "score": None,
            }
            for ent in doc.ents
        ]
        outputs.append({"entities": entities, "truncated": len(item["text"]) > model.max_length})
    return outputs


def _chat(
    model: CausalLMBackend,
    build: Callable[[str], list[dict[str, str]]],
    text: str,
    reserve: int,
) -> tuple[list[int], bool]:
    """The prompt ids for `build(text)`, with `text` cut so that prompt + `reserve` new tokens fit."""
    overhead = len(model.prompt_ids(build("")))
    budget = model.max_length - reserve - overhead
    if budget <= 0:
        raise InvalidInput(
            f"the output length asked for leaves no room for the input ({model.max_length} tokens)"
        )
    fitted, truncated = model.fit(text, budget)
    ids = model.prompt_ids(build(fitted))
    while len(ids) + reserve > model.max_length and fitted:  # the cut point merged tokens: cut more
        budget -= len(ids) + reserve - model.max_length
        fitted, truncated = model.fit(text, budget)
        ids = model.prompt_ids(build(fitted))
    return ids, truncated


def _usage(done: Completion) -> Item:
    return {
        "prompt_tokens": done.prompt_tokens,
        "completion_tokens": done.completion_tokens,
        "total_tokens": done.prompt_tokens + done.completion_tokens,
    }


def _generation(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    if isinstance(backend, Seq2SeqBackend):
        rows = [
            Sampling(max_new_tokens=item["max_tokens"], temperature=item["temperature"],
                     top_p=options["top_p"], seed=options["seed"])
            for item in items
        ]  # fmt: skip
        done, cuts = backend.generate([item["prompt"] for item in items], rows)
        return [
            {"text": d.text, "usage": _usage(d), "finish_reason": d.finish_reason, "truncated": cut}
            for d, cut in zip(done, cuts, strict=True)
        ]
    model = cast(CausalLMBackend, backend)
    prompts, cuts, rows = [], [], []
    for item in items:
        ids, cut = _chat(
            model, lambda text: [{"role": "user", "content": text}], item["prompt"], item["max_tokens"]
        )
        prompts.append(ids)
        cuts.append(cut)
        rows.append(
            Sampling(
                max_new_tokens=item["max_tokens"],
                temperature=item["temperature"],
                top_p=options["top_p"],
                seed=options["seed"],
            )
        )
    return [
        {"text": done.text, "usage": _usage(done), "finish_reason": done.finish_reason, "truncated": cut}
        for done, cut in zip(model.generate(prompts, rows), cuts, strict=True)
    ]


def _qa_messages(question: str) -> Callable[[str], list[dict[str, str]]]:
    def build(context: str) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": QA_SYSTEM},
            {"role": "user", "content": f"Text: {context}\n\nQuestion: {question}"},
        ]

    return build


def _qa(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    if isinstance(backend, ExtractiveQABackend):
        return _extractive_qa(backend, items, options)
    model = cast(CausalLMBackend, backend)
    reserve = options["max_answer_tokens"]
    prompts, contexts, questions, cuts = [], [], [], []
    for item in items:
        questions.append(item["question"])
        ids, cut = _chat(model, _qa_messages(item["question"]), item["context"], reserve)
        prompts.append(ids)
        cuts.append(cut)
        contexts.append(item["context"])
    replies = model.generate(prompts, [Sampling(max_new_tokens=reserve)] * len(items))
    outputs = []
    for context, question, reply, cut in zip(contexts, questions, replies, cuts, strict=True):
        start, end, quality, match = locate_answer(context, reply.text, question)
        outputs.append(
            {
                "answer": context[start:end],
                "score": reply.mean_probability * quality if match != "none" else 0.0,
                "start": start,
                "end": end,
                "match": match,
                "generated": reply.text,
                "truncated": cut,
            }
        )
    return outputs


def _extractive_qa(model: ExtractiveQABackend, items: list[Item], options: Item) -> list[Item]:
    """A span head reads the answer off the context: it always indexes into it."""
    contexts = [item["context"] for item in items]
    spans = model.answer(
        [item["question"] for item in items], contexts, max_answer_tokens=options["max_answer_tokens"]
    )
    outputs = []
    for context, span in zip(contexts, spans, strict=True):
        start, end, score = span if span is not None else (0, 0, 0.0)
        outputs.append(
            {"answer": context[start:end], "score": score, "start": start, "end": end,
             "match": "extractive" if span is not None else "none", "truncated": False}
        )  # fmt: skip
    return outputs


def _summary_messages(text: str) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": SUMMARY_SYSTEM},
        {"role": "user", "content": f"Summarize the following text in a few sentences.\n\n{text}"},
    ]


def _summarization(backend: Backend, items: list[Item], options: Item) -> list[Item]:
    rows = [Sampling(max_new_tokens=item["max_length"], min_new_tokens=item["min_length"]) for item in items]
    if isinstance(backend, Seq2SeqBackend):
        done, cuts = backend.generate([backend.summary_prefix + item["text"] for item in items], rows)
    else:
        model = cast(CausalLMBackend, backend)
        prompts, cuts = [], []
        for item in items:
            ids, cut = _chat(model, _summary_messages, item["text"], item["max_length"])
            prompts.append(ids)
            cuts.append(cut)
        done = model.generate(prompts, rows)
    return [
        {"summary_text": d.text, "usage": _usage(d), "finish_reason": d.finish_reason, "truncated": cut}
        for d, cut in zip(done, cuts, strict=True)
    ]


_RUNS: dict[str, Callable[[Backend, list[Item], Item], list[Item]]] = {
    "embeddings": _embeddings,
    "classification": _classification,
    "ner": _ner,
    "generation": _generation,
    "qa": _qa,
    "summarization": _summarization,
}


# ------------------------------------------------------------------------------------ answer spans

_QUOTES = "\"'`“”‘’«»"
_WORD = re.compile(r"\w+")
# "The answer to this question is:", "Answer:", "Quote -": what small models put before the answer.
_LEAD_IN = re.compile(
    r"^(?:the\s+)?(?:answer|quote)(?:\s+to\s+(?:this|the|your)\s+question)?(?:\s+is)?\s*[:\-]?\s*",
    flags=re.IGNORECASE,
)


def locate_answer(context: str, reply: str, question: str = "") -> tuple[int, int, float, str]:
    """(start, end, quality, match) of the model's reply in the context; see the module docstring."""
    cleaned = _LEAD_IN.sub("", reply.strip().strip(_QUOTES).strip()).strip().strip(_QUOTES).strip()
    candidates = [reply.strip(), cleaned, cleaned.rstrip(".!?;:,").strip().strip(_QUOTES).strip()]
    candidates = [c for c in dict.fromkeys(candidates) if c]
    for candidate in candidates:
        start = context.find(candidate)
        if start >= 0:
            return start, start + len(candidate), 1.0, "exact"
    for candidate in candidates:
        found = re.search(re.escape(candidate), context, flags=re.IGNORECASE)
        if found:
            return found.start(), found.end(), 1.0, "case_insensitive"
    return _best_overlap(context, cleaned, question)


def _content(text: str) -> list[str]:
    return [word for word in (w.lower() for w in _WORD.findall(text)) if word not in _STOPWORDS]


def _best_overlap(context: str, reply: str, question: str) -> tuple[int, int, float, str]:
    """The context span whose content words (lower-cased, function words left out) best overlap the
    reply's, by F1. Words of the question are left out of the reply's bag when others remain (a reply
    restates the question; the answer is the rest). The best span starts and ends on a wanted word,
    so only those spans are tried."""
    asked = set(_content(question))
    wanted = Counter(word for word in _content(reply) if word not in asked) or Counter(_content(reply))
    words = [(m.start(), m.end(), m.group().lower()) for m in _WORD.finditer(context)]
    if not wanted or not words:
        return 0, 0, 0.0, "none"
    size = sum(wanted.values())
    longest = min(4 * size + 8, 256)  # words, function words included
    best = (0.0, 0, 0)  # f1, first word, last word
    for first, (_, _, word) in enumerate(words):
        if word not in wanted:
            continue
        seen: Counter[str] = Counter()
        common = length = 0
        for last in range(first, min(first + longest, len(words))):
            token = words[last][2]
            if token in _STOPWORDS:
                continue
            length += 1
            seen[token] += 1
            if seen[token] <= wanted[token]:
                common += 1
            if token in wanted:
                f1 = 2 * common / (length + size)
                if f1 > best[0] + 1e-12:
                    best = (f1, first, last)
    f1, first, last = best
    if f1 == 0.0:
        return 0, 0, 0.0, "none"
    return words[first][0], words[last][1], f1, "overlap"


_FUNCTION_WORDS = """a an the and or but if of at by for with about against between into through during before after
    above below to from up down in out on off over under again further then once here there when where
    why how all any both each few more most other some such no nor not only own same so than too very
    can will just should now is are was were be been being have has had having do does did doing i me
    my we our you your he him his she her it its they them their what which who whom this that these
    those am would could s t"""
_STOPWORDS = frozenset(_FUNCTION_WORDS.split())
