"""Seed 002's LLM fine-tuning requests (/api/llm-finetuning/*), bounded by the limits in spec.py."""

from typing import Any

from pydantic import ConfigDict, Field

from stratus.capabilities.finetune import spec
from stratus.capabilities.nlp import spec as nlp
from stratus.db.ids import ObjectIdStr
from stratus.schemas.base import Schema

NAME = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")


class LoraStart(Schema):
    """Seed 002's body. `dataset_path` names one of your datasets by id or name; `output_dir` is the
    name the adapter gets in the model registry (a path's last part is taken), never a server path."""

    model_config = ConfigDict(extra="forbid")

    base_model: str = Field(default="HuggingFaceTB/SmolLM2-135M-Instruct", min_length=1, max_length=200)
    dataset_path: str = Field(min_length=1, max_length=500)
    output_dir: str | None = Field(default=None, min_length=1, max_length=200)
    lora_r: int = Field(default=8, ge=spec.LORA_R[0], le=spec.LORA_R[1])
    lora_alpha: int = Field(default=16, ge=1, le=4096)
    lora_dropout: float = Field(default=0.05, ge=0, lt=1)
    epochs: int = Field(default=3, ge=1, le=spec.MAX_EPOCHS)
    batch_size: int = Field(default=4, ge=1, le=spec.MAX_BATCH_SIZE)
    learning_rate: float = Field(default=2e-4, gt=0, lt=1)
    max_length: int = Field(default=512, ge=spec.MAX_LENGTH[0], le=spec.MAX_LENGTH[1])
    gradient_accumulation_steps: int = Field(default=4, ge=1, le=spec.MAX_GRAD_ACCUM)
    save_steps: int = Field(default=spec.DEFAULT_SAVE_STEPS, ge=1, le=1_000_000)
    max_steps: int | None = Field(default=None, ge=1, le=10_000_000, description="Stop after this many steps")
    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    validation_dataset: str | None = Field(
        default=None, min_length=1, max_length=500,
        description="One of your datasets (id or name) scored for eval loss instead of a held-out split",
    )  # fmt: skip
    validation_split: float | None = Field(
        default=None, ge=0, le=0.5,
        description="Share of the examples held out for eval loss; default 10% of a dataset of 50 or more, 0: none",
    )  # fmt: skip
    eval_steps: int | None = Field(
        default=None, ge=1, le=1_000_000, description="Eval loss every this many steps (default save_steps)"
    )


class LoraStarted(Schema):
    task_id: str
    status: str
    method: str
    model_name: str
    estimate: dict[str, Any]


class AdapterTest(Schema):
    model_config = ConfigDict(extra="forbid")

    task_id: ObjectIdStr
    prompt: str = Field(min_length=1, max_length=20_000)
    # The inference worker's generation limits (seed 002's example asks for 256 tokens).
    max_tokens: int = Field(default=256, ge=nlp.MAX_TOKENS.ge, le=nlp.MAX_TOKENS.le)
    temperature: float = Field(default=0.0, ge=nlp.TEMPERATURE.ge, le=nlp.TEMPERATURE.le)
    checkpoint: int | None = Field(
        default=None, ge=1, le=10_000_000, description="A checkpoint's step instead of the final adapter"
    )


class AdapterTestAnswer(Schema):
    response: str
    model: str
    base_model: str


class MergeStart(Schema):
    model_config = ConfigDict(extra="forbid")

    task_id: ObjectIdStr
    output_path: str | None = Field(default=None, min_length=1, max_length=200)
    checkpoint: int | None = Field(
        default=None, ge=1, le=10_000_000, description="Merge a checkpoint's adapter instead"
    )


class MergeStarted(Schema):
    task_id: str
    status: str
    model_name: str
