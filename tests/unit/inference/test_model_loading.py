"""Loading models safely: a checkpoint that lacks weights its model needs is refused with the reason
(never served from random weights), and many first uses at once load every model as a sequential load
would (transformers' from_pretrained swaps process-wide state, so overlapping loads once left weight
tying switched off and tied models generating garbage). Tiny models written by save_pretrained."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file, save_file

from stratus_worker.inference import downloaded
from stratus_worker.inference.engine import InferenceEngine
from stratus_worker.inference.errors import ModelUnavailable
from tests import hub_server

BURST = 8  # concurrent first uses
JOIN_S = 120


def tiny_llama(directory: Path, *, tied: bool) -> None:
    """`hub_server.tiny_causal_lm`'s model, with its lm_head tied to the embeddings or its own."""
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = hub_server._word_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=2, num_key_value_heads=2, max_position_embeddings=256, pad_token_id=1,
        eos_token_id=2, bos_token_id=None, tie_word_embeddings=tied,
    )  # fmt: skip
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer.save_pretrained(directory)


def drop_weight(directory: Path, key: str) -> None:
    """Rewrite the checkpoint without `key` (as a truncated or badly converted upload would be)."""
    weights = load_file(directory / "model.safetensors")
    assert key in weights
    del weights[key]
    save_file(weights, directory / "model.safetensors", metadata={"format": "pt"})


def serve(engine: InferenceEngine, directory: Path, architecture: str, revision: str) -> str:
    """Add the directory to the engine as a downloaded model; its engine key."""
    model_type = "llama" if "Llama" in architecture else "bert"
    source = {"snapshot": f"users/u/jobs/{revision}/snapshot", "files": [], "architecture": architecture,
              "model_type": model_type, "revision": revision, "max_sequence_length": 64}  # fmt: skip
    spec = downloaded.spec_for("org/tiny", source, directory)
    engine.add(spec)
    return spec.name


GREEDY = [{"prompt": "this product is good", "max_tokens": 8, "temperature": 0}]


@pytest.mark.parametrize(
    ("architecture", "weight", "task", "item"),
    [
        ("LlamaForCausalLM", "lm_head.weight", "generation", GREEDY[0]),
        ("BertForSequenceClassification", "classifier.weight", "classification", {"text": "great"}),
    ],
)
def test_a_checkpoint_without_a_weight_its_model_needs_is_refused(
    tmp_path: Path, architecture: str, weight: str, task: str, item: dict[str, Any]
) -> None:
    # GIVEN a checkpoint whose model has its own (untied) weight, deleted from the file
    if architecture == "LlamaForCausalLM":
        tiny_llama(tmp_path, tied=False)
    else:
        hub_server.tiny_bert(tmp_path, head="classifier")
    drop_weight(tmp_path, weight)
    engine = InferenceEngine(models=(), cache_dir=tmp_path / "cache")
    key = serve(engine, tmp_path, architecture, "r1")
    # WHEN it is used THEN the load fails naming the missing weight, and nothing is kept
    with pytest.raises(ModelUnavailable, match=rf"lacks weights .*\({weight}\)"):
        engine.run(task, key, [item])
    assert engine.loaded() == []


def test_an_encoder_checkpoint_without_a_pooler_still_serves_embeddings(tmp_path: Path) -> None:
    # GIVEN a BERT encoder saved without its pooler (as BertForMaskedLM checkpoints are)
    hub_server.tiny_bert(tmp_path, head=None)
    for key in ("pooler.dense.weight", "pooler.dense.bias"):
        drop_weight(tmp_path, key)
    engine = InferenceEngine(models=(), cache_dir=tmp_path / "cache")
    key = serve(engine, tmp_path, "BertModel", "r1")
    # THEN embeddings (which never use the pooler) are served
    [out] = engine.run("embeddings", key, [{"text": "a short sentence"}])
    assert out["dimension"] == 32


def test_concurrent_first_loads_generate_what_a_sequential_load_does(tmp_path: Path) -> None:
    # GIVEN a tied causal LM (no lm_head in the file: tying supplies it), loaded alone as the reference
    tiny_llama(tmp_path, tied=True)
    sequential = InferenceEngine(models=(), cache_dir=tmp_path / "cache")
    [reference] = sequential.run("generation", serve(sequential, tmp_path, "LlamaForCausalLM", "ref"), GREEDY)
    # WHEN as many distinct models (one engine key each) are first used at the same moment
    engine = InferenceEngine(models=(), cache_dir=tmp_path / "cache", max_downloaded_loaded=BURST + 1)
    keys = [serve(engine, tmp_path, "LlamaForCausalLM", f"r{i}") for i in range(BURST)]
    start = threading.Barrier(BURST)
    results: dict[str, Any] = {}

    def first_use(key: str) -> None:
        start.wait(timeout=JOIN_S)
        try:
            results[key] = engine.run("generation", key, GREEDY)[0]
        except Exception as e:  # recorded: the assertion below shows it
            results[key] = e

    threads = [threading.Thread(target=first_use, args=(key,)) for key in keys]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_S)
    # THEN each one answers exactly what the sequential load did (greedy decoding)
    assert results == dict.fromkeys(keys, reference)
    # AND a model loaded after the burst does too (nothing was left switched off)
    [after] = engine.run("generation", serve(engine, tmp_path, "LlamaForCausalLM", "after"), GREEDY)
    assert after == reference
