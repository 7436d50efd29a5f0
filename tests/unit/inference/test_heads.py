"""Span selection and entity grouping for downloaded task heads, on hand-made logits and labels."""

from __future__ import annotations

import math

import torch

from stratus_worker.inference.heads import Token, best_span, group_entities

NEG = -20.0


def test_the_best_span_lies_in_the_context_and_ends_after_it_starts() -> None:
    # GIVEN 8 positions: 0-2 question, 3-7 context; the raw argmax of start is in the question and
    # the raw argmax of end comes before the best start
    start = torch.tensor([9.0, NEG, NEG, NEG, 5.0, NEG, NEG, NEG])
    end = torch.tensor([NEG, NEG, NEG, 8.0, NEG, NEG, 4.0, NEG])
    allowed = torch.tensor([False, False, False, True, True, True, True, True])
    span = best_span(start, end, allowed, max_tokens=5)
    # THEN the answer is 4..6 (not the question, not an end before its start)
    assert span is not None and (span.start, span.end) == (4, 6)
    # AND its score is P(start) x P(end), each over the context's positions only
    p_start = torch.softmax(start[3:], dim=0)[1]
    p_end = torch.softmax(end[3:], dim=0)[3]
    assert math.isclose(math.exp(span.log_score), float(p_start * p_end), rel_tol=1e-4)


def test_spans_longer_than_the_limit_are_not_chosen() -> None:
    start = torch.tensor([5.0, 0.0, 0.0, 0.0, 0.0])
    end = torch.tensor([0.0, 0.0, 0.0, 0.0, 5.0])
    allowed = torch.ones(5, dtype=torch.bool)
    span = best_span(start, end, allowed, max_tokens=3)
    assert span is not None and span.end - span.start < 3


def test_no_context_means_no_span() -> None:
    assert best_span(torch.zeros(4), torch.zeros(4), torch.zeros(4, dtype=torch.bool), 3) is None


def test_entities_are_grouped_by_bio_labels_and_words() -> None:
    # "Hugging Face is in New York City ." with "Hugging" split into two sub-tokens
    text = "Hugging Face is in New York City."
    tokens = [
        Token(None, "O", 1.0, 0, 0),  # [CLS]
        Token(0, "B-ORG", 0.9, 0, 4),  # Hug
        Token(0, "O", 0.2, 4, 7),  # ##ging: takes its word's label, whatever it predicts
        Token(1, "I-ORG", 0.7, 8, 12),  # Face
        Token(2, "O", 0.99, 13, 15),  # is
        Token(3, "O", 0.99, 16, 18),  # in
        Token(4, "B-LOC", 0.8, 19, 22),  # New
        Token(5, "I-LOC", 0.6, 23, 27),  # York
        Token(6, "B-LOC", 0.5, 28, 32),  # City: a B- starts a new entity even of the same type
        Token(7, "O", 0.99, 32, 33),  # .
        Token(None, "O", 1.0, 0, 0),  # [SEP]
    ]
    entities = group_entities(tokens, text)
    assert [(e["type"], e["text"]) for e in entities] == [
        ("ORG", "Hugging Face"),
        ("LOC", "New York"),
        ("LOC", "City"),
    ]
    assert entities[0]["start"] == 0 and entities[0]["end"] == 12
    assert math.isclose(float(str(entities[0]["score"])), 0.8)


def test_io_labels_and_type_changes() -> None:
    text = "Paris London Alice"
    tokens = [Token(0, "LOC", 0.9, 0, 5), Token(1, "LOC", 0.7, 6, 12), Token(2, "I-PER", 0.8, 13, 18)]
    entities = group_entities(tokens, text)
    assert [(e["type"], e["text"]) for e in entities] == [("LOC", "Paris London"), ("PER", "Alice")]
