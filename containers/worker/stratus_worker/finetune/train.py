"""The `finetune` kind: a LoRA (or QLoRA: 4-bit nf4 base) adapter trained with a plain loop.

A plain loop rather than trl's SFTTrainer: the job must stop between optimizer steps on SIGTERM, stop
on a NaN or exploding loss with that reason, and report each step's loss, learning rate and tokens/s;
the loop is the same work as `Trainer` without the indirection (bench/finetune_steps.py compares it
with a raw peft loop).

Evaluation: a validation dataset (`params.validation_key`) or a share of the examples held out at random
(`validation_split`; by default 10% of a dataset of at least 50) is scored every `eval_steps` (default
`save_steps`) and at the end: the mean loss per answer token, `eval_loss` in the progress events from
then on, in the final metrics, and with its steps in the history.

Artifacts, under the job's output prefix: `checkpoints/step-<n>/` every `save_steps` optimizer steps
and when stopped, `adapter/` at the end (adapter_config.json + adapter_model.safetensors, what peft's
`PeftModel.from_pretrained` reads), `metrics.json`.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

import torch

from stratus.capabilities.finetune import examples as dataset_examples
from stratus.capabilities.finetune.spec import LOSS_EXPLODES_AT, TRAINABLE_TARGETS
from stratus.errors import NotFound
from stratus_worker.events import ProgressGate
from stratus_worker.finetune import base
from stratus_worker.finetune.data import IGNORE, Encoded, collate, encode, token_stats
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import download, upload_file, upload_json

ADAPTER_FILES = ("adapter_config.json", "adapter_model.safetensors")


@dataclass(frozen=True)
class Hyper:
    lora_r: int
    lora_alpha: int
    lora_dropout: float
    epochs: int
    batch_size: int
    learning_rate: float
    max_length: int
    gradient_accumulation_steps: int
    save_steps: int
    max_steps: int | None
    seed: int
    validation_split: float | None = None  # None: automatic (see held_out)
    eval_steps: int | None = None  # None: every save_steps

    @classmethod
    def of(cls, hp: dict[str, Any]) -> Hyper:
        return cls(
            lora_r=int(hp.get("lora_r", 8)),
            lora_alpha=int(hp.get("lora_alpha", 16)),
            lora_dropout=float(hp.get("lora_dropout", 0.05)),
            epochs=int(hp.get("epochs", 1)),
            batch_size=int(hp.get("batch_size", 4)),
            learning_rate=float(hp.get("learning_rate", 2e-4)),
            max_length=int(hp.get("max_length", 512)),
            gradient_accumulation_steps=int(hp.get("gradient_accumulation_steps", 1)),
            save_steps=int(hp.get("save_steps", 50)),
            max_steps=int(hp["max_steps"]) if hp.get("max_steps") else None,
            seed=int(hp.get("seed", 42)),
            validation_split=float(hp["validation_split"])
            if hp.get("validation_split") is not None
            else None,
            eval_steps=int(hp["eval_steps"]) if hp.get("eval_steps") else None,
        )


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_examples(ctx: JobContext, key: str, fmt: str) -> list[dataset_examples.Messages]:
    path = ctx.workdir / f"dataset.{fmt}"
    try:
        download(ctx.storage, key, path)
    except NotFound:
        raise JobFailed(f"Dataset object '{key}' not found in storage") from None
    parsed = dataset_examples.parse(path.read_bytes(), fmt)
    path.unlink(missing_ok=True)
    if parsed.errors:
        raise JobFailed(f"The dataset has {len(parsed.errors)} bad example(s): {parsed.summary()}")
    if not parsed.examples:
        raise JobFailed("The dataset has no examples")
    return parsed.examples


def add_lora(model: Any, hp: Hyper, *, four_bit: bool) -> Any:
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if four_bit:
        # Casts norms to float32 and enables input gradients, which 4-bit layers need to train adapters.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)  # type: ignore[no-untyped-call]
    names = {name.rsplit(".", 1)[-1] for name, _ in model.named_modules()}
    targets = [t for t in TRAINABLE_TARGETS if t in names] or ["q_proj", "v_proj"]
    config = LoraConfig(
        r=hp.lora_r,
        lora_alpha=hp.lora_alpha,
        lora_dropout=hp.lora_dropout,
        target_modules=targets,
        task_type="CAUSAL_LM",
    )
    return get_peft_model(model, config)


class Run:
    """One fine-tune: owns the model, the optimizer, the step counter and the uploaded checkpoints."""

    def __init__(
        self,
        ctx: JobContext,
        model: Any,
        batches: list[list[Encoded]],
        hp: Hyper,
        pad_id: int,
        eval_batches: list[list[Encoded]] | None = None,
    ):
        self.ctx, self.model, self.hp, self.pad_id = ctx, model, hp, pad_id
        self.batches = batches
        # Padded once, not per step: collating is Python work that a small model notices.
        self.tensors = [collate(batch, pad_id) for batch in batches]
        self.eval_tensors = [collate(batch, pad_id) for batch in eval_batches or []]
        self.eval_every = hp.eval_steps or hp.save_steps
        self.eval_loss: float | None = None
        self.eval_seconds = 0.0  # left out of the throughput figures
        self.answer_tokens = [int((t["labels"][:, 1:] != IGNORE).sum()) for t in self.tensors]
        self.dev = next(p.device for p in model.parameters())
        params = [p for p in model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(params, lr=hp.learning_rate, weight_decay=0.0)
        per_epoch = math.ceil(len(batches) / hp.gradient_accumulation_steps)
        self.total_steps = min(per_epoch * hp.epochs, hp.max_steps or per_epoch * hp.epochs)
        warmup = max(1, self.total_steps // 20)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: min(
                (s + 1) / warmup, max(0.0, (self.total_steps - s) / max(1, self.total_steps - warmup))
            ),
        )
        self.step = 0
        self.history: dict[str, list[float]] = {
            "loss": [],
            "learning_rate": [],
            "eval_loss": [],
            "eval_step": [],
        }
        self.artifacts: dict[str, str] = {}

    def train(self) -> dict[str, float]:
        hp, gate = self.hp, ProgressGate()
        self.model.train()
        started, tokens, last = time.perf_counter(), 0, 0.0
        for epoch in range(hp.epochs):
            order = list(range(len(self.batches)))
            random.Random(hp.seed + epoch).shuffle(order)
            for start in range(0, len(order), hp.gradient_accumulation_steps):
                if self.step >= self.total_steps:
                    break
                group = order[start : start + hp.gradient_accumulation_steps]
                loss, counted = self._optimizer_step(group)
                tokens += counted
                self.step += 1
                lr = float(self.scheduler.get_last_lr()[0])
                self.history["loss"].append(loss)
                self.history["learning_rate"].append(lr)
                if not math.isfinite(loss) or loss > LOSS_EXPLODES_AT:
                    what = "became NaN" if math.isnan(loss) else f"exploded ({loss:.3g})"
                    self.save_checkpoint()
                    raise JobFailed(
                        f"Training stopped at step {self.step}: the train loss {what}; "
                        "lower the learning rate",
                        Outcome(history=self.history, artifacts=self.artifacts),
                    )
                elapsed = max(time.perf_counter() - started - self.eval_seconds, 1e-9)
                last = loss
                progress = 100.0 * self.step / self.total_steps
                due = (
                    bool(self.eval_every)
                    and self.step % self.eval_every == 0
                    and self.step < self.total_steps
                )
                evaluated = due and self.evaluate() is not None
                if evaluated or gate.crossed(progress) or self.step % 10 == 0 or self.step == 1:
                    metrics: dict[str, float | None] = {
                        "loss": round(loss, 5),
                        "learning_rate": lr,
                        "tokens_per_s": round(tokens / elapsed, 1),
                        "epoch": round(epoch + (start + len(group)) / max(len(order), 1), 3),
                    }
                    if self.eval_loss is not None:  # the latest, in every event after the first eval
                        metrics["eval_loss"] = self.eval_loss
                    self.ctx.events.progress(
                        "training",
                        epoch=epoch + 1,
                        total_epochs=hp.epochs,
                        step=self.step,
                        total_steps=self.total_steps,
                        progress=progress,
                        metrics=metrics,
                    )
                if hp.save_steps and self.step % hp.save_steps == 0 and self.step < self.total_steps:
                    self.save_checkpoint()
                if self.ctx.should_stop:
                    self.save_checkpoint()
                    raise JobStopped(Outcome(history=self.history, artifacts=self.artifacts))
        elapsed = max(time.perf_counter() - started - self.eval_seconds, 1e-9)
        final_eval = self.evaluate()
        return {
            **({"eval_loss": final_eval} if final_eval is not None else {}),
            "train_loss": round(last, 5),
            "first_loss": round(self.history["loss"][0], 5) if self.history["loss"] else 0.0,
            "steps": float(self.step),
            "tokens_per_s": round(tokens / elapsed, 1),
            "steps_per_s": round(self.step / elapsed, 4),
            "train_seconds": round(elapsed, 2),
        }

    def evaluate(self) -> float | None:
        """Mean loss per answer token over the held-out examples (None without any); recorded in the
        history and in the following progress events."""
        if not self.eval_tensors:
            return None
        began = time.perf_counter()
        self.model.eval()
        total, count = 0.0, 0
        with torch.no_grad():
            for batch in self.eval_tensors:
                inputs = {k: v.to(self.dev, non_blocking=True) for k, v in batch.items()}
                out = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
                logits, labels = out.logits[:, :-1].float(), inputs["labels"][:, 1:]
                total += float(
                    torch.nn.functional.cross_entropy(
                        logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE,
                        reduction="sum",
                    )
                )  # fmt: skip
                count += int((labels != IGNORE).sum())
        self.model.train()
        self.eval_seconds += time.perf_counter() - began
        self.eval_loss = round(total / max(count, 1), 5)
        self.history["eval_loss"].append(self.eval_loss)
        self.history["eval_step"].append(float(self.step))
        return self.eval_loss

    def _optimizer_step(self, group: list[int]) -> tuple[float, int]:
        """One optimizer step over the micro-batches `group`; (mean loss per answer token, tokens seen)."""
        answer_tokens = sum(self.answer_tokens[i] for i in group)
        total_loss, tokens = 0.0, 0
        for index in group:
            inputs = {k: v.to(self.dev, non_blocking=True) for k, v in self.tensors[index].items()}
            out = self.model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
            logits = out.logits[:, :-1].float()
            labels = inputs["labels"][:, 1:]
            # Summed over the answer tokens of every micro-batch, then divided once: the same loss as
            # one big batch, whatever gradient_accumulation_steps is.
            loss = torch.nn.functional.cross_entropy(
                logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE, reduction="sum"
            ) / max(answer_tokens, 1)
            loss.backward()  # type: ignore[no-untyped-call]
            total_loss += float(loss.detach())
            tokens += int(inputs["attention_mask"].sum())
        if math.isfinite(total_loss):
            torch.nn.utils.clip_grad_norm_([p for p in self.model.parameters() if p.requires_grad], 1.0)
            self.optimizer.step()
            self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return total_loss, tokens

    def save_adapter(self, name: str) -> tuple[str, list[str], int]:
        """Save the adapter and upload it under `name`; (prefix, files, bytes)."""
        local = self.ctx.workdir / name
        self.model.save_pretrained(local)
        prefix = self.ctx.artifact_key(name)
        files, size = [], 0
        for path in sorted(local.rglob("*")):
            if path.is_file():
                rel = path.relative_to(local).as_posix()
                upload_file(self.ctx.storage, f"{prefix}/{rel}", path, "application/octet-stream")
                files.append(rel)
                size += path.stat().st_size
        return prefix, files, size

    def save_checkpoint(self) -> None:
        if self.step == 0:
            return
        prefix, _, _ = self.save_adapter(f"checkpoints/step-{self.step}")
        self.artifacts[f"checkpoint_step_{self.step}"] = prefix
        self.artifacts["checkpoint"] = prefix


def run(ctx: JobContext) -> Outcome:
    params = ctx.params
    hp = Hyper.of(dict(params.get("hyperparameters") or {}))
    four_bit = params.get("method") == "qlora"
    ctx.events.progress(
        "loading", epoch=0, total_epochs=hp.epochs, step=0, total_steps=0, progress=0.0, metrics={}
    )
    examples = load_examples(ctx, str(params["dataset_key"]), str(params.get("dataset_format") or "jsonl"))
    if params.get("validation_key"):
        held = load_examples(
            ctx, str(params["validation_key"]), str(params.get("validation_format") or "jsonl")
        )
    else:
        examples, held = dataset_examples.held_out(examples, hp.validation_split, hp.seed)
    torch.manual_seed(hp.seed)
    path = base.base_dir(dict(params["base"]), ctx.storage)
    model, tokenizer = base.load(path, four_bit=four_bit, device=device())
    encoded = [encode(tokenizer, e, hp.max_length) for e in examples]
    stats = token_stats(encoded, hp.max_length)
    usable = [e for e in encoded if any(x != IGNORE for x in e.labels[1:])]
    if not usable:
        raise JobFailed(f"No example keeps any of its answer within max_length={hp.max_length} tokens")
    stats["skipped_no_answer"] = float(len(encoded) - len(usable))
    evaluated = [
        e
        for e in (encode(tokenizer, x, hp.max_length) for x in held)
        if any(y != IGNORE for y in e.labels[1:])
    ]
    stats["eval_examples"] = float(len(evaluated))
    if ctx.should_stop:
        raise JobStopped()
    model = add_lora(model, hp, four_bit=four_bit)
    # Similar lengths together: less padding per batch (the order of batches is shuffled per epoch).
    usable.sort(key=lambda e: len(e.input_ids))
    batches = [usable[i : i + hp.batch_size] for i in range(0, len(usable), hp.batch_size)]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    evaluated.sort(key=lambda e: len(e.input_ids))
    eval_batches = [evaluated[i : i + hp.batch_size] for i in range(0, len(evaluated), hp.batch_size)]
    trainer = Run(ctx, model, batches, hp, int(pad), eval_batches)
    ctx.events.progress(
        "training", epoch=0, total_epochs=hp.epochs, step=0, total_steps=trainer.total_steps, progress=0.0,
        metrics=dict(stats),
    )  # fmt: skip
    final = trainer.train()
    ctx.events.progress(
        "saving", epoch=hp.epochs, total_epochs=hp.epochs, step=trainer.step, total_steps=trainer.total_steps,
        progress=100.0, metrics={"loss": final["train_loss"], "tokens_per_s": final["tokens_per_s"],
                                 "learning_rate": trainer.history["learning_rate"][-1],
                                 **({"eval_loss": final["eval_loss"]} if "eval_loss" in final else {})},
    )  # fmt: skip
    prefix, files, size = trainer.save_adapter("adapter")
    trainable, total = trainer.model.get_nb_trainable_parameters()
    final_metrics: dict[str, Any] = {**final, **stats, "trainable_parameters": trainable, "parameters": total}
    artifacts = {
        **trainer.artifacts,
        "adapter": prefix,
        "snapshot": prefix,
        "metrics": ctx.artifact_key("metrics.json"),
    }
    upload_json(
        ctx.storage,
        artifacts["metrics"],
        {"job_id": ctx.job_id, "final_metrics": final_metrics, "history": trainer.history},
    )
    model_info = {
        "files": files,
        "size_mb": round(size / 1_000_000, 6),
        "architecture": {
            "class": str((trainer.model.config.architectures or ["LlamaForCausalLM"])[0]),
            "adapter": "lora",
            "quantization": "nf4" if four_bit else None,
            "lora_r": hp.lora_r,
            "lora_alpha": hp.lora_alpha,
            "trainable_parameters": trainable,
            "base": params["base"].get("name"),
        },
    }
    return Outcome(final_metrics, trainer.history, {}, artifacts, model_info)
