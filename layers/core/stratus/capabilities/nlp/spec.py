"""The NLP inference tasks' limits and defaults, written once: the API's request schemas and the inference
worker's validation both read them (this module imports nothing heavy)."""

from __future__ import annotations

from typing import NamedTuple

from stratus.schemas.options import FloatOption, IntOption


class CountRange(NamedTuple):
    min: int
    max: int


TASKS = ("embeddings", "classification", "ner", "generation", "qa", "summarization")

# Any one text (a prompt, a context, a text to classify or embed), in characters.
MAX_TEXT_CHARS = 100_000
MAX_QUESTION_CHARS = 2_000
# Texts in one embeddings request.
EMBEDDING_TEXTS = CountRange(1, 256)
# Zero-shot classification labels (two at least: one label is no choice).
CANDIDATE_LABELS = CountRange(2, 50)

# generation
MAX_TOKENS = IntOption(default=128, ge=1, le=1024)
TEMPERATURE = FloatOption(default=0.7, ge=0.0, le=2.0)
# summarization, in tokens of the summary (seed 000 sends 150 and 50)
SUMMARY_MAX_LENGTH = IntOption(default=150, ge=5, le=1024)
SUMMARY_MIN_LENGTH = IntOption(default=30, ge=0, le=1024)
# embeddings: unit-length vectors on request (sentence-transformers' own default is off)
NORMALIZE_DEFAULT = False
