"""The base model of a fine-tune: its directory (a built-in GGUF model's float32 copy, or a model's files
copied from object storage), loaded in float32 for LoRA or 4-bit nf4 for QLoRA.

The built-in SmolLM2 ships as GGUF; the inference worker's backend already converts it once into the
model cache (`STRATUS_MODEL_CACHE`), so both read the same directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from stratus.ports.storage import ObjectStorage
from stratus_worker.inference import downloaded, loading
from stratus_worker.inference.backends import CausalLMBackend, _converted_dir, default_cache_dir
from stratus_worker.inference.errors import ModelNotFound, ModelUnavailable
from stratus_worker.inference.registry import get
from stratus_worker.runtime import JobFailed


def base_dir(base: dict[str, Any], storage: ObjectStorage, cache_dir: Path | None = None) -> Path:
    """A directory `from_pretrained` reads for the base described by the job's `params.base`."""
    cache = cache_dir or default_cache_dir()
    try:
        if base.get("snapshot"):
            return downloaded.fetch(storage, base, cache)
        spec = get(str(base.get("name")))
        gguf = spec.local_path()
        converted = _converted_dir(spec, gguf, cache)
        if converted is None or not (converted / "config.json").exists():
            loading.prepare()
            with loading.LOAD_LOCK:
                CausalLMBackend(spec, gguf, cache)  # writes the float32 copy into the cache
        if converted is None or not (converted / "config.json").exists():
            raise JobFailed(f"Base model '{spec.name}' could not be converted into the model cache {cache}")
        return converted
    except (ModelNotFound, ModelUnavailable) as e:
        raise JobFailed(f"Base model '{base.get('name')}' cannot be loaded: {e}") from e


def quantization_config() -> Any:
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(  # type: ignore[no-untyped-call]
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if torch.cuda.is_available() else torch.float32,
    )


def load(path: Path, *, four_bit: bool, device: torch.device) -> tuple[Any, Any]:
    """(model, tokenizer). QLoRA: the base in 4-bit nf4 (bitsandbytes; CUDA, or its CPU library)."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": torch.float32}
    if four_bit:
        try:
            import bitsandbytes  # noqa: F401
        except ImportError as e:
            raise JobFailed(f"QLoRA needs bitsandbytes, which this worker lacks: {e}") from e
        kwargs["quantization_config"] = quantization_config()
        kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else "cpu"
    loading.prepare()
    model = loading.from_pretrained(AutoModelForCausalLM, path, model=str(path.name), **kwargs)
    if not four_bit:
        model = model.to(device)
    return model, tokenizer
