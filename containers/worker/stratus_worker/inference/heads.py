"""Reading the outputs of downloaded task heads, without the pipelines transformers 5 removed.

- `best_span`: extractive question answering (a `*ForQuestionAnswering` head): the context span whose
  start and end log-probabilities sum highest, end not before start and at most `max_tokens` long.
- `group_entities`: token classification (a `*ForTokenClassification` NER head with BIO or IO labels):
  consecutive tokens of one entity type become one entity; a word split into sub-tokens takes the label
  of its first sub-token, the way the models are trained (the other sub-tokens carry -100 there).

Both are pure functions of tensors or lists, so they are tested with hand-made logits and labels.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Span:
    start: int  # token index, inclusive
    end: int  # token index, inclusive
    log_score: float  # log P(start) + log P(end)


def best_span(
    start_logits: torch.Tensor, end_logits: torch.Tensor, allowed: torch.Tensor, max_tokens: int
) -> Span | None:
    """The best span among the `allowed` positions (a bool mask: the context's tokens), or None when
    no position is allowed. Log-probabilities are taken over the allowed positions only."""
    if not bool(allowed.any()):
        return None
    masked_start = start_logits.float().masked_fill(~allowed, float("-inf"))
    masked_end = end_logits.float().masked_fill(~allowed, float("-inf"))
    log_start = torch.log_softmax(masked_start, dim=-1)
    log_end = torch.log_softmax(masked_end, dim=-1)
    length = start_logits.shape[-1]
    ones = torch.ones(length, length, dtype=torch.bool)
    band = torch.triu(ones) & ~torch.triu(ones, diagonal=max_tokens)  # j >= i and j < i + max_tokens
    scores = (log_start[:, None] + log_end[None, :]).masked_fill(~band, float("-inf"))
    flat = int(scores.argmax())
    i, j = divmod(flat, length)
    return Span(start=i, end=j, log_score=float(scores[i, j]))


@dataclass(frozen=True)
class Token:
    word: int | None  # the word it belongs to (None: a special or padding token)
    label: str  # the predicted label, e.g. "B-ORG", "I-PER", "O" or "LOC"
    score: float  # the label's probability
    start: int  # character offsets in the text
    end: int


def group_entities(tokens: Sequence[Token], text: str) -> list[dict[str, object]]:
    """Entities as the NER task reports them: type, text, character span and mean score."""
    entities: list[dict[str, object]] = []
    current: _Open | None = None
    previous_word: int | None = None
    for token in tokens:
        if token.word is None:
            previous_word = None
            continue
        if token.word == previous_word:  # a later sub-token: part of whatever its word is
            if current is not None:
                current.end = token.end
            continue
        previous_word = token.word
        prefix, kind = _split(token.label)
        if current is not None and (kind is None or prefix == "B" or current.kind != kind):
            entities.append(current.close(text))
            current = None
        if kind is None:
            continue
        if current is None:
            current = _Open(kind, token.start, token.end, [token.score])
        else:
            current.end = token.end
            current.scores.append(token.score)
    if current is not None:
        entities.append(current.close(text))
    return entities


@dataclass
class _Open:
    kind: str
    start: int
    end: int
    scores: list[float]

    def close(self, text: str) -> dict[str, object]:
        return {
            "type": self.kind,
            "text": text[self.start : self.end],
            "start": self.start,
            "end": self.end,
            "score": sum(self.scores) / len(self.scores),
        }


def _split(label: str) -> tuple[str | None, str | None]:
    """("B", "ORG") for "B-ORG" or "S-ORG", ("I", "PER") for "I-PER" or "E-PER", (None, "LOC") for an
    IO label "LOC", (None, None) for "O"."""
    if label == "O":
        return None, None
    if len(label) > 2 and label[1] in "-_" and label[0] in "BIES":
        return ("B" if label[0] in "BS" else "I"), label[2:]
    return None, label
