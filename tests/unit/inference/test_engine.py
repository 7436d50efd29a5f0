"""InferenceEngine on the real built-in models, offline: one batched call per test where possible."""

from __future__ import annotations

import math
import re
import threading
from pathlib import Path
from typing import Any

import pytest

from stratus.capabilities.nlp.spec import TASKS as NLP_TASKS
from stratus_worker.inference import backends, registry
from stratus_worker.inference.backends import CausalLMBackend, EmbeddingBackend, SpacyBackend
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import InvalidInput, ModelNotFound, UnknownTask, WrongTask

pytestmark = pytest.mark.slow  # real models

EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
NER = "spacy/en_core_web_sm"
LLM = "HuggingFaceTB/SmolLM2-135M-Instruct"
BERT_CONTEXT = (
    "BERT is a transformer model developed by Google in 2018. It is pre-trained on large amounts of text "
    "and fine-tuned for tasks such as question answering."
)


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))


# --- embeddings and zero-shot classification ----------------------------------------------------------


def test_a_paraphrase_is_closer_than_an_unrelated_sentence(engine: InferenceEngine) -> None:
    out = engine.run(
        "embeddings",
        EMBEDDER,
        [
            {"text": "A man is playing a guitar."},
            {"text": "Someone is strumming a guitar."},
            {"text": "The stock market fell sharply today."},
        ],
        {"normalize": True},
    )
    assert [o["dimension"] for o in out] == [384] * 3
    assert all(len(o["embedding"]) == 384 and o["truncated"] is False for o in out)
    assert all(abs(math.sqrt(sum(v * v for v in o["embedding"])) - 1) < 1e-5 for o in out)  # normalised
    paraphrase = cosine(out[0]["embedding"], out[1]["embedding"])
    unrelated = cosine(out[0]["embedding"], out[2]["embedding"])
    assert paraphrase > unrelated + 0.3


def test_embeddings_match_sentence_transformers(engine: InferenceEngine) -> None:
    """The packed forward pass gives SentenceTransformer.encode's numbers (mixed lengths, an empty text)."""
    from sentence_transformers import SentenceTransformer

    texts = [
        "short",
        "",
        "a somewhat longer sentence about packing sequences " * 3,
        "Paris is in France.",
    ] * 5
    ours = engine.run("embeddings", EMBEDDER, [{"text": t} for t in texts], {"normalize": True})
    reference = SentenceTransformer(str(registry.get(EMBEDDER).local_path()), device="cpu")
    theirs = reference.encode(texts, normalize_embeddings=True)
    assert (
        min(cosine(o["embedding"], list(map(float, t))) for o, t in zip(ours, theirs, strict=True)) > 0.9999
    )
    raw = engine.run("embeddings", EMBEDDER, [{"text": "Paris is in France."}], {"normalize": False})
    assert abs(math.sqrt(sum(v * v for v in raw[0]["embedding"])) - 1) > 0.01


def test_zero_shot_picks_the_obvious_label(engine: InferenceEngine) -> None:
    topics = ["sports", "politics", "cooking"]
    out = engine.run(
        "classification",
        EMBEDDER,
        [
            {
                "text": "The team scored in the final minute to win the championship.",
                "candidate_labels": topics,
            },
            {"text": "Simmer the onions in butter, then add the garlic.", "candidate_labels": topics},
            {"text": "This is a great product!"},  # no labels: sentiment
            {"text": "Terrible service, I want my money back."},
        ],
    )
    assert [o["labels"][0]["label"] for o in out] == ["sports", "cooking", "positive", "negative"]
    for o in out:
        scores = [entry["score"] for entry in o["labels"]]
        assert scores == sorted(scores, reverse=True)
        assert abs(sum(scores) - 1) < 1e-5
        assert o["method"] == "zero-shot-embedding-similarity"
    assert out[0]["hypothesis_template"] == "This text is about {label}."
    assert [entry["label"] for entry in out[2]["labels"]] == ["positive", "negative"]


def test_long_inputs_are_truncated_and_flagged(engine: InferenceEngine) -> None:
    long_text = "word " * 400  # > 256 tokens
    out = engine.run("embeddings", EMBEDDER, [{"text": long_text}, {"text": "short"}])
    assert [o["truncated"] for o in out] == [True, False]
    labelled = engine.run("classification", EMBEDDER, [{"text": long_text, "candidate_labels": ["a", "b"]}])
    assert labelled[0]["truncated"] is True


# --- NER ----------------------------------------------------------------------------------------------


def test_ner_finds_the_seed_example_entities(engine: InferenceEngine) -> None:
    text = "John works at Google in California"
    [out] = engine.run("ner", NER, [{"text": text}])
    found = {(e["type"], e["text"]) for e in out["entities"]}
    assert {("PERSON", "John"), ("ORG", "Google"), ("GPE", "California")} <= found
    for entity in out["entities"]:
        assert text[entity["start"] : entity["end"]] == entity["text"]
        assert entity["score"] is None  # spaCy has no confidence scores
    assert out["truncated"] is False


def test_ner_batch_and_truncation(engine: InferenceEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    backend = engine.load(NER)
    assert isinstance(backend, SpacyBackend)
    assert tuple(backend.nlp.get_pipe("ner").labels) == registry.get(NER).labels
    monkeypatch.setattr(backend, "max_length", 30)
    out = engine.run("ner", NER, [{"text": "Angela Merkel visited Paris. " * 3}, {"text": "Nothing here."}])
    assert [o["truncated"] for o in out] == [True, False]
    assert all(e["end"] <= 30 for e in out[0]["entities"])
    assert out[1]["entities"] == []


# --- the language model: generation, QA, summarisation --------------------------------------------------


def test_generation_usage_adds_up_and_a_seed_repeats(engine: InferenceEngine) -> None:
    items = [
        {"prompt": "Name three colors.", "max_tokens": 8, "temperature": 0},
        {"prompt": "Write a short line about rain.", "max_tokens": 6, "temperature": 0.9},
    ]
    first = engine.run("generation", LLM, items, {"seed": 7})
    again = engine.run("generation", LLM, items, {"seed": 7})
    assert [o["text"] for o in first] == [o["text"] for o in again]
    for out, item in zip(first, items, strict=True):
        usage = out["usage"]
        assert usage["prompt_tokens"] > 0
        assert 0 < usage["completion_tokens"] <= item["max_tokens"]
        assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
        assert out["finish_reason"] in ("stop", "length")
        assert out["text"]
    assert first[1]["finish_reason"] == "length"  # 6 tokens never finish a line of poetry
    # greedy alone gives what greedy gave inside the batch
    [alone] = engine.run("generation", LLM, items[:1])
    assert alone["text"] == first[0]["text"]


def test_qa_answers_are_spans_of_the_context(engine: InferenceEngine) -> None:
    hamlet = "Hamlet is a tragedy written by William Shakespeare sometime between 1599 and 1601."
    items = [
        {"question": "What is BERT?", "context": BERT_CONTEXT},
        {"question": "Who wrote Hamlet?", "context": hamlet},
    ]
    out = engine.run("qa", LLM, items)
    for o, item in zip(out, items, strict=True):
        assert item["context"][o["start"] : o["end"]] == o["answer"]
        assert o["answer"]
        assert 0 < o["score"] <= 1
        assert o["match"] in ("exact", "case_insensitive", "overlap")
    assert {"transformer", "model", "google"} & set(out[0]["answer"].lower().split())
    assert "Shakespeare" in out[1]["answer"]


def test_summarization_respects_max_and_min_length(engine: InferenceEngine) -> None:
    text = (
        "The Amazon rainforest covers much of the Amazon basin of South America. It spans nine countries, "
        "with the majority inside Brazil. It is home to millions of species and plays a major role in "
        "regulating the global climate. Deforestation has destroyed large areas in recent decades."
    )
    out = engine.run(
        "summarization",
        LLM,
        [
            {"text": text, "max_length": 12, "min_length": 0},
            {"text": text, "max_length": 14, "min_length": 14},
        ],
    )
    assert out[0]["usage"]["completion_tokens"] <= 12
    assert out[1]["usage"]["completion_tokens"] == 14
    assert all(o["summary_text"] and o["truncated"] is False for o in out)
    assert "amazon" in out[0]["summary_text"].lower()


def test_a_prompt_over_the_context_is_cut_to_fit(
    engine: InferenceEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    backend = engine.load(LLM)
    assert isinstance(backend, CausalLMBackend)
    monkeypatch.setattr(backend, "max_length", 80)
    [out] = engine.run(
        "summarization", LLM, [{"text": "The sea is blue and wide. " * 40, "max_length": 5, "min_length": 0}]
    )
    assert out["truncated"] is True
    assert out["usage"]["prompt_tokens"] + 5 <= 80


# --- catalogue and errors ----------------------------------------------------------------------------


def test_catalogue_describes_the_loaded_models(engine: InferenceEngine) -> None:
    entries = {entry["name"]: entry for entry in engine.catalogue() if set(entry["tasks"]) & set(NLP_TASKS)}
    assert set(entries) == {EMBEDDER, NER, LLM}
    assert entries[EMBEDDER]["tasks"] == ["embeddings", "classification"]
    assert entries[NER]["tasks"] == ["ner"] and "PERSON" in entries[NER]["labels"]
    assert entries[LLM]["tasks"] == ["generation", "qa", "summarization"]
    for entry in entries.values():
        assert entry["source"] == "builtin"
        assert entry["parameters"] > 0 and entry["size_mb"] > 0 and entry["max_sequence_length"] > 0
    embedder, llm = engine.load(EMBEDDER), engine.load(LLM)
    assert isinstance(embedder, EmbeddingBackend) and isinstance(llm, CausalLMBackend)
    assert sum(p.numel() for p in embedder.model.parameters()) == entries[EMBEDDER]["parameters"]
    assert sum(p.numel() for p in llm.model.parameters()) == entries[LLM]["parameters"]
    for spec in registry.BUILTIN_MODELS:
        path = spec.local_path()
        size = (
            sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
            if path.is_dir()
            else path.stat().st_size
        )
        assert abs(size / 1e6 - spec.size_mb) < 0.1


def test_errors_name_what_is_available(engine: InferenceEngine) -> None:
    with pytest.raises(ModelNotFound) as missing:
        engine.run("embeddings", "bert-base-uncased", [{"text": "x"}])
    assert missing.value.available[:3] == [EMBEDDER, NER, LLM]
    assert "efficientnet-lite0" in missing.value.available  # seed 002's recognition and audio models
    assert missing.value.to_dict()["error"] == "model_not_found"
    with pytest.raises(WrongTask) as wrong:
        engine.run("ner", EMBEDDER, [{"text": "x"}])
    assert wrong.value.supported == ["embeddings", "classification"]
    with pytest.raises(UnknownTask):
        engine.run("translation", EMBEDDER, [{"text": "x"}])


@pytest.mark.parametrize(
    ("task", "model", "items", "options", "message"),
    [
        ("embeddings", EMBEDDER, [{"txt": "x"}], {}, "inputs[0].text must be a string"),
        ("embeddings", EMBEDDER, ["x"], {}, "inputs[0] must be an object"),
        (
            "embeddings",
            EMBEDDER,
            [{"text": "x"}],
            {"normalise": True},
            "Unknown option(s) for embeddings: normalise",
        ),
        ("classification", EMBEDDER, [{"text": "x", "candidate_labels": []}], {}, "candidate_labels"),
        ("classification", EMBEDDER, [{"text": "x"}], {"hypothesis_template": "about {}"}, "{label}"),
        ("generation", LLM, [{"prompt": "hi", "temperature": 3}], {}, "temperature must be between 0 and 2"),
        ("generation", LLM, [{"prompt": "hi", "max_tokens": 0}], {}, "max_tokens must be between 1 and 1024"),
        ("qa", LLM, [{"question": "Why?"}], {}, "inputs[0].context must be a non-empty string"),
        ("summarization", LLM, [{"text": "x", "max_length": 5, "min_length": 9}], {}, "exceeds max_length"),
    ],
)
def test_invalid_inputs_are_refused_before_any_model_runs(
    task: str, model: str, items: list[Any], options: dict[str, Any], message: str
) -> None:
    fresh = InferenceEngine()
    with pytest.raises(InvalidInput, match=re.escape(message)):
        fresh.run(task, model, items, options)
    assert fresh.loaded() == []


def test_a_model_loads_once_whatever_the_number_of_threads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls = []
    real = backends.load_backend

    def counting(spec: registry.ModelSpec, cache_dir: Path) -> backends.Backend:
        calls.append(spec.name)
        return real(spec, cache_dir)

    monkeypatch.setattr("stratus_worker.inference.engine.load_backend", counting)
    fresh = InferenceEngine([registry.get(EMBEDDER)], cache_dir=tmp_path)
    results: list[list[dict[str, Any]]] = []
    threads = [
        threading.Thread(
            target=lambda i=i: results.append(fresh.run("embeddings", EMBEDDER, [{"text": f"t{i}"}]))
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == [EMBEDDER]
    assert len(results) == 6 and fresh.batches_run == 6
