"""Locating a language model's answer in the context (no model needed)."""

from __future__ import annotations

import pytest

from stratus_worker.inference.tasks import locate_answer

BERT = (
    "BERT is a transformer model developed by Google in 2018. It is pre-trained on large amounts of text "
    "and fine-tuned for tasks such as question answering."
)
HAMLET = "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."


@pytest.mark.parametrize(
    ("context", "reply", "question", "answer", "match"),
    [
        (HAMLET, "William Shakespeare", "Who wrote Hamlet?", "William Shakespeare", "exact"),
        (HAMLET, '"William Shakespeare."', "Who wrote Hamlet?", "William Shakespeare", "exact"),
        (
            HAMLET,
            "The answer to this question is: William Shakespeare",
            "Who wrote Hamlet?",
            "William Shakespeare",
            "exact",
        ),
        (
            HAMLET,
            "Answer: william shakespeare",
            "Who wrote Hamlet?",
            "William Shakespeare",
            "case_insensitive",
        ),
        (BERT, "BERT is released in 2018.", "When was BERT released?", "2018", "overlap"),
        (
            BERT,
            "It is a language model developed by Google.",
            "What is BERT?",
            "model developed by Google",
            "overlap",
        ),
        (BERT, "Zebras graze quietly.", "What is BERT?", "", "none"),
        (BERT, "", "What is BERT?", "", "none"),
    ],
)
def test_the_answer_is_a_span_of_the_context(
    context: str, reply: str, question: str, answer: str, match: str
) -> None:
    start, end, quality, how = locate_answer(context, reply, question)
    assert context[start:end] == answer
    assert how == match
    assert quality == (1.0 if match in ("exact", "case_insensitive") else quality)
    assert (quality == 0.0) == (match == "none")
    assert 0.0 <= quality <= 1.0


def test_an_overlap_span_scores_its_f1() -> None:
    context = "The Eiffel Tower is a wrought-iron lattice tower in Paris, France. It was completed in 1889."
    start, end, quality, how = locate_answer(
        context, "The Eiffel Tower is located in Paris, France.", "Where is the Eiffel Tower?"
    )
    assert (context[start:end], how) == ("Paris, France", "overlap")
    assert quality == pytest.approx(0.8)  # 2 of the 3 wanted words (located, paris, france), in a 2-word span
