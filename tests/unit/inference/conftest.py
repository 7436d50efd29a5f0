"""One InferenceEngine for the inference tests: each real model is loaded once (on first use) and kept.

The first run on a machine also converts SmolLM2's GGUF file to a float32 copy in the model cache
(~45 s, once); later runs load that copy in a few seconds.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch

from stratus_worker.inference.engine import InferenceEngine

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
NER = "spacy/en_core_web_sm"
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"


@pytest.fixture(scope="package")
def engine() -> Iterator[InferenceEngine]:
    """Small models on a small, shared CPU run fastest on one thread (restored afterwards)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield InferenceEngine()
    torch.set_num_threads(previous)
