"""The `finetune` worker kind on a tiny random Llama: LoRA and QLoRA train (the loss falls), the adapter
and its checkpoints land in storage, SIGTERM stops with a checkpoint, and a diverging loss stops the job
with the reason."""

from __future__ import annotations

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


def test_the_inference_engine_serves_the_adapter_unmerged_on_its_base(harness: Harness) -> None:
    from peft import PeftModel

    from stratus_worker.inference import adapters, downloaded
    from stratus_worker.inference.backends import default_cache_dir
    from stratus_worker.inference.engine import InferenceEngine

    assert harness.run(params(harness, epochs=2), kind="finetune") == 0
    result = harness.sink.result
    source = {
        "snapshot": result["artifacts"]["adapter"],
        "files": result["model"]["files"],
        "revision": "job-1",
        "adapter": {"base": params(harness)["base"]},
    }
    path = downloaded.fetch(harness.storage, source, default_cache_dir())
    spec = adapters.spec_for("my-adapter", source, path, harness.storage, default_cache_dir())
    engine = InferenceEngine(models=(spec,))
    [out] = engine.run(
        "generation",
        spec.name,
        [{"prompt": "What is the capital of France?", "max_tokens": 5, "temperature": 0}],
    )
    assert out["usage"]["completion_tokens"] >= 1
    backend = engine.load(spec.name)
    # The adapter sits beside the base weights (its lora_A/lora_B layers are there), not merged into them.
    assert isinstance(backend.model, PeftModel)
    assert any(name.endswith("lora_A") for name, _ in backend.model.named_modules())
