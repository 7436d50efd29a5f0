"""Fine-tuning steps/s: the `finetune` job (stratus_worker.finetune, run in-process through the worker's
own entrypoint) against a raw peft + transformers loop on the same model, examples, batch size and
LoRA settings. Both time their optimizer steps only (model loading is excluded from both).

Usage: python bench/finetune_steps.py [--model tiny|smollm2] [--steps N] [--rounds R] [--clock cpu|wall]
`--clock cpu` (the default) times both loops in process CPU time (torch runs on one thread), which a
busy shared machine moves far less than elapsed time; `wall` times elapsed time.
`tiny` is a random Llama (4 layers, hidden 256) built from a config; `smollm2` the built-in
SmolLM2-135M-Instruct (slow on a shared CPU: ~10-30 s a step).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "layers/core"), str(ROOT / "containers/worker"), str(ROOT)]

import torch  # noqa: E402

from stratus.adapters.local.storage import LocalDirectoryStorage  # noqa: E402
from stratus.ports.events import Event  # noqa: E402
from stratus_worker.__main__ import run_job  # noqa: E402
from stratus_worker.events import JobEvents  # noqa: E402
from stratus_worker.runtime import JobContext  # noqa: E402

EXAMPLES = [
    {"instruction": "What is the capital of France?", "output": "The capital of France is Paris."},
    {"prompt": "Translate to French: good morning.", "completion": "Bonjour, comment allez-vous?"},
    {"messages": [{"role": "user", "content": "Name a colour."}, {"role": "assistant", "content": "Blue."}]},
] * 8
BENCH_SIGNING = "bench-only"  # local storage signs download URLs, which the bench never hands out
HP = {"lora_r": 8, "lora_alpha": 16, "lora_dropout": 0.0, "batch_size": 4, "learning_rate": 1e-3,
      "max_length": 128, "gradient_accumulation_steps": 1, "epochs": 1000}  # fmt: skip


CLOCK = time.perf_counter  # --clock cpu: time.process_time, for both loops


class _CpuTime:
    """Stands in for the `time` module inside the job's training loop, so its steps/s is CPU time too."""

    def __getattr__(self, name: str) -> Any:
        return time.process_time if name == "perf_counter" else getattr(time, name)


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    def publish(self, event: Event) -> None:
        self.events.append(event)

    def close(self) -> None:
        return None


def job_steps_per_s(root: Path, base: dict[str, Any], steps: int) -> float:
    storage = LocalDirectoryStorage(root / "objects", base_url="http://bench", signing_secret=BENCH_SIGNING)
    data = "\n".join(json.dumps(e) for e in EXAMPLES).encode()
    asyncio.run(storage.put_bytes("bench/data.jsonl", data))
    sink = Sink()
    params = {
        "method": "lora", "base": base, "dataset_key": "bench/data.jsonl", "dataset_format": "jsonl",
        "hyperparameters": {**HP, "max_steps": steps, "save_steps": 10**6},
    }  # fmt: skip
    workdir = Path(tempfile.mkdtemp(dir=root))
    ctx = JobContext("bench", params, "bench/out", workdir, storage, JobEvents(sink, "bench"))
    assert run_job(ctx, "finetune") == 0, sink.events[-1].detail
    return float(sink.events[-1].detail["final_metrics"]["steps_per_s"])


def raw_steps_per_s(model_dir: Path, steps: int) -> float:
    """The loop a peft user writes: tokenize with the chat template, pad, model(**batch, labels)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from stratus.capabilities.finetune.examples import to_messages

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    targets = ["q_proj", "k_proj", "v_proj", "o_proj"]
    model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=targets))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    texts = [
        tokenizer.apply_chat_template(to_messages(e)[0], tokenize=True, return_dict=True)["input_ids"]
        for e in EXAMPLES
    ]
    texts.sort(key=len)
    batches = []
    for i in range(0, len(texts), HP["batch_size"]):
        chunk = texts[i : i + HP["batch_size"]]
        width = max(map(len, chunk))
        ids = torch.tensor([t + [pad] * (width - len(t)) for t in chunk])
        mask = torch.tensor([[1] * len(t) + [0] * (width - len(t)) for t in chunk])
        labels = ids.masked_fill(mask == 0, -100)
        batches.append({"input_ids": ids, "attention_mask": mask, "labels": labels})
    model.train()
    started = CLOCK()
    for step in range(steps):
        loss = model(**batches[step % len(batches)]).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return steps / (CLOCK() - started)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", choices=("tiny", "smollm2"), default="tiny")
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--clock", choices=("wall", "cpu"), default="cpu",
        help="cpu: the process's CPU time (torch on one thread), which other processes on a busy machine "
        "barely move; wall: elapsed time",
    )  # fmt: skip
    args = parser.parse_args()
    if args.clock == "cpu":
        global CLOCK
        from stratus_worker.finetune import train

        CLOCK = time.process_time
        train.time = _CpuTime()  # type: ignore[assignment]
    torch.set_num_threads(1)
    root = Path(tempfile.mkdtemp(prefix="bench-finetune-"))
    if args.model == "tiny":
        from tests import tiny_llama

        model_dir = tiny_llama.build(root / "tiny", layers=4, hidden=256)
        storage = LocalDirectoryStorage(
            root / "objects", base_url="http://bench", signing_secret=BENCH_SIGNING
        )
        files = [p.name for p in model_dir.iterdir() if p.is_file()]
        for name in files:
            asyncio.run(storage.put_bytes(f"bench/base/{name}", (model_dir / name).read_bytes()))
        base: dict[str, Any] = {"name": "tiny-llama", "snapshot": "bench/base", "files": files}
    else:
        from stratus_worker.finetune.base import base_dir

        base = {"name": "HuggingFaceTB/SmolLM2-135M-Instruct"}
        model_dir = base_dir(
            base, LocalDirectoryStorage(root / "objects", base_url="http://b", signing_secret=BENCH_SIGNING)
        )
    job, raw = [], []
    for _ in range(args.rounds):  # interleaved, so a busy moment hits both
        raw.append(raw_steps_per_s(model_dir, args.steps))
        job.append(job_steps_per_s(root, base, args.steps))
    j, r = statistics.median(job), statistics.median(raw)
    # Each round's raw and job runs are back to back: their ratio cancels most of the machine's swings.
    pairs = [a / b for a, b in zip(job, raw, strict=True)]
    print(
        f"model={args.model} steps={args.steps} batch={HP['batch_size']} rounds={args.rounds} clock={args.clock}"
    )
    print(f"job (stratus_worker.finetune): {j:.3f} steps/s   runs: {[round(x, 3) for x in job]}")
    print(f"raw peft + transformers loop:  {r:.3f} steps/s   runs: {[round(x, 3) for x in raw]}")
    print(f"ratio of medians job/raw: {j / r:.3f} (target >= 0.95)")
    print(
        f"median of per-round ratios: {statistics.median(pairs):.3f}   rounds: {[round(x, 3) for x in pairs]}"
    )


if __name__ == "__main__":
    main()
