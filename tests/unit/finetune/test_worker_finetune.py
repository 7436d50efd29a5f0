"""The `finetune` worker kind on a tiny random Llama: LoRA and QLoRA train (the loss falls), the adapter
and its checkpoints land in storage, SIGTERM stops with a checkpoint, and a diverging loss stops the job
with the reason."""

from __future__ import annotations

import pytest

from tests.unit.finetune.conftest import params
from tests.unit.worker.harness import Harness

PROGRESS, RESULT = "Stratus Job Progress", "Stratus Job Result"


def test_lora_trains_reports_and_saves_the_adapter(harness: Harness) -> None:
    code = harness.run(params(harness), kind="finetune")
    result = harness.sink.result
    assert code == 0, result
    metrics = result["final_metrics"]
    assert metrics["train_loss"] < metrics["first_loss"]
    assert (
        metrics["examples"] == 12 and metrics["tokens_min"] <= metrics["tokens_p95"] <= metrics["tokens_max"]
    )
    assert metrics["truncated"] == 0
    training = [e for e in harness.sink.of(PROGRESS) if e["phase"] == "training" and e["step"] > 0]
    assert training and all({"loss", "learning_rate", "tokens_per_s"} <= set(e["metrics"]) for e in training)
    assert training[-1]["step"] == training[-1]["total_steps"] == 12
    artifacts = result["artifacts"]
    assert harness.exists(f"{artifacts['adapter']}/adapter_model.safetensors")
    assert harness.exists(f"{artifacts['adapter']}/adapter_config.json")
    assert harness.exists(f"{artifacts['checkpoint_step_4']}/adapter_model.safetensors")
    assert harness.exists(f"{artifacts['checkpoint_step_8']}/adapter_model.safetensors")
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(result["model"]["files"])


def test_qlora_trains_a_4bit_base(harness: Harness) -> None:
    code = harness.run(params(harness, method="qlora", epochs=2), kind="finetune")
    result = harness.sink.result
    assert code == 0, result
    assert result["model"]["architecture"]["quantization"] == "nf4"
    assert result["final_metrics"]["train_loss"] < result["final_metrics"]["first_loss"]


def test_a_diverging_loss_stops_the_job_with_the_reason(harness: Harness) -> None:
    code = harness.run(params(harness, learning_rate=1e4, epochs=20), kind="finetune")
    result = harness.sink.result
    assert code == 1
    assert result["status"] == "failed"
    assert "the train loss" in result["error"] and "lower the learning rate" in result["error"]


def test_sigterm_stops_after_a_checkpoint(harness: Harness) -> None:
    def stop_on_first_step(event: object) -> None:
        detail = getattr(event, "detail", {})
        if detail.get("phase") == "training" and detail.get("step") == 1 and harness.ctx is not None:
            harness.ctx.should_stop = True

    harness.sink.on_publish = stop_on_first_step
    code = harness.run(params(harness), kind="finetune")
    assert code == 143
    result = harness.sink.result
    assert result["status"] == "stopped"
    assert harness.exists(f"{result['artifacts']['checkpoint']}/adapter_model.safetensors")


def test_merged_model_answers_like_the_unmerged_adapter(harness: Harness) -> None:
    """merge_and_unload's weights give the same logits as the base with the adapter on the side."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from stratus_worker.finetune import base
    from stratus_worker.inference import downloaded
    from stratus_worker.inference.backends import default_cache_dir

    assert harness.run(params(harness, epochs=2), kind="finetune") == 0
    trained = harness.sink.result
    adapter = {"snapshot": trained["artifacts"]["adapter"], "files": trained["model"]["files"]}
    merge_params = {"base": params(harness)["base"], "adapter": adapter}
    assert harness.run(merge_params, kind="finetune_merge", job_id="merge-1") == 0
    merged = harness.sink.result
    merged_dir = downloaded.fetch(
        harness.storage, {"snapshot": merged["artifacts"]["snapshot"], "files": merged["model"]["files"]},
        default_cache_dir(),
    )  # fmt: skip
    base_model, tokenizer = base.load(
        base.base_dir(merge_params["base"], harness.storage), four_bit=False, device=torch.device("cpu")
    )
    unmerged = PeftModel.from_pretrained(
        base_model, downloaded.fetch(harness.storage, adapter, default_cache_dir())
    ).eval()
    reloaded = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    ids = tokenizer("What is the capital of France?", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        a, b = unmerged(input_ids=ids).logits, reloaded(input_ids=ids).logits
        plain = unmerged.get_base_model()
        with unmerged.disable_adapter():
            without = plain(input_ids=ids).logits
    assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    assert not torch.allclose(a, without, atol=1e-3)  # the adapter does change the output


def test_the_inference_engine_serves_adapters_on_the_one_loaded_base(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two fine-tunes of one base: each answers with its adapter switched on, the base answers as before
    with them switched off, and the base's weights are loaded once (the adapters borrow its backend)."""
    from peft import PeftModel

    from stratus_worker.inference import adapters, downloaded
    from stratus_worker.inference.backends import default_cache_dir
    from stratus_worker.inference.engine import InferenceEngine

    base = params(harness)["base"]
    sources = []
    for job_id, lr in (("job-a", 5e-3), ("job-b", 2e-2)):
        assert harness.run(params(harness, epochs=2, learning_rate=lr), kind="finetune", job_id=job_id) == 0
        result = harness.sink.result
        sources.append(
            {
                "snapshot": result["artifacts"]["adapter"],
                "files": result["model"]["files"],
                "revision": job_id,
                "adapter": {"base": base},
            }
        )
    engine = InferenceEngine(models=())
    base_spec = adapters.base_spec(base, harness.storage, default_cache_dir())
    engine.add(base_spec)
    prompt = [{"prompt": "What is the capital of France?", "max_tokens": 8, "temperature": 0}]
    [before] = engine.run("generation", base_spec.name, prompt)
    names = []
    for i, source in enumerate(sources):
        path = downloaded.fetch(harness.storage, source, default_cache_dir())
        spec = adapters.spec_for(f"tuned-{i}", source, path, base_spec)
        engine.add(spec)
        names.append(spec.name)
    outputs = [engine.run("generation", name, prompt)[0] for name in names]
    [after] = engine.run("generation", base_spec.name, prompt)
    assert after["text"] == before["text"]  # the base alone, whatever adapters are attached
    assert all(out["usage"]["completion_tokens"] >= 1 for out in outputs)
    base_backend = engine.load(base_spec.name)
    assert isinstance(base_backend.peft, PeftModel)
    assert set(base_backend.peft.peft_config) == set(names)
    for name in names:
        backend = engine.load(name)
        # No second copy: the adapter's model is the base's own module, with the LoRA layers beside it.
        assert backend.model.get_base_model() is base_backend.model
    assert any(name.endswith("lora_A") for name, _ in base_backend.model.named_modules())
    # Switching adapters per request gives each its own answer, the same as running it alone.
    again = [engine.run("generation", name, prompt)[0] for name in reversed(names)]
    assert [o["text"] for o in reversed(again)] == [o["text"] for o in outputs]
    # Over the bound, the least recently used adapter is dropped and loaded again when next asked for.
    from stratus_worker.inference import backends

    monkeypatch.setattr(backends, "MAX_ADAPTERS", 1)
    for _ in range(2):
        for name, expected in zip(names, outputs, strict=True):
            assert engine.run("generation", name, prompt)[0]["text"] == expected["text"]
            assert list(base_backend.peft.peft_config) == [name]
    assert engine.run("generation", base_spec.name, prompt)[0]["text"] == before["text"]


def test_eval_loss_on_a_held_out_split_is_reported_at_intervals_and_at_the_end(harness: Harness) -> None:
    code = harness.run(
        params(harness, validation_split=0.25, eval_steps=2, epochs=4, batch_size=3), kind="finetune"
    )
    result = harness.sink.result
    assert code == 0, result
    metrics = result["final_metrics"]
    assert metrics["eval_examples"] == 3 and metrics["examples"] == 9  # 12 examples, a quarter held out
    history = result["history"]
    # Every 2 of the 12 steps (2, 4, ..., 10) and once more at the end.
    assert history["eval_step"] == [2.0, 4.0, 6.0, 8.0, 10.0, 12.0]
    assert history["eval_loss"][-1] == metrics["eval_loss"] < history["eval_loss"][0]
    training = [e for e in harness.sink.of(PROGRESS) if e["phase"] == "training" and e["step"] >= 2]
    assert training and all("eval_loss" in e["metrics"] for e in training)
    saving = [e for e in harness.sink.of(PROGRESS) if e["phase"] == "saving"]
    assert saving[-1]["metrics"]["eval_loss"] == metrics["eval_loss"]


def test_a_validation_dataset_is_scored_instead_of_a_split(harness: Harness) -> None:
    from tests.unit.finetune.conftest import EXAMPLES, jsonl

    harness.upload("datasets/valid.jsonl", jsonl(EXAMPLES[:2]))
    p = params(harness, epochs=1)
    p |= {"validation_key": "datasets/valid.jsonl", "validation_format": "jsonl"}
    assert harness.run(p, kind="finetune") == 0
    metrics = harness.sink.result["final_metrics"]
    assert metrics["eval_examples"] == 2 and metrics["examples"] == 12
    assert "eval_loss" in metrics


def test_no_eval_without_held_out_examples() -> None:
    from stratus.capabilities.finetune.examples import held_out

    rows = [[{"role": "user", "content": str(i)}, {"role": "assistant", "content": "x"}] for i in range(60)]
    assert held_out(rows[:12], None, 1) == (rows[:12], [])  # too few for an automatic split
    train, valid = held_out(rows, None, 1)
    assert len(valid) == 6 and len(train) == 54 and not {id(r) for r in train} & {id(r) for r in valid}
    assert len(held_out(rows[:2], 0.9, 1)[0]) == 1  # always one left to train on
