"""Loading models in a server whose requests run on several threads.

transformers' loading is not thread-safe, in two ways that a burst of first uses once hit together:

- Its top-level names (`transformers.AutoTokenizer`, ...) are resolved lazily on first access, and two
  threads resolving them at once can fail with AttributeError or ImportError ("cannot import name").
  `prepare()` resolves every name loading and running a model needs, once; the server calls it before
  it accepts requests, and every load calls it first.
- `from_pretrained` swaps process-wide state for its duration: `PreTrainedModel.tie_weights` and
  torch's init functions are replaced by no-ops and put back, torch's default dtype is set. Two loads
  that overlap can put the no-op back for good, and every later model with tied embeddings then comes
  up with a random `lm_head` that generates garbage. So every load holds `LOAD_LOCK`: one at a time in
  the process (the engine also loads each model once; this lock is what keeps different models apart).

`from_pretrained` also asks for the loading info and refuses a model whose checkpoint lacked weights
it needs (they would be randomly initialised): an error naming them, never output from random weights.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from stratus_worker.inference.errors import ModelUnavailable

LOAD_LOCK = threading.RLock()  # re-entrant: a backend's load holds it around its own from_pretrained calls

# Every transformers name the backends use, resolved once (see the module docstring).
NAMES = (
    "AutoModel",
    "AutoModelForCausalLM",
    "AutoModelForQuestionAnswering",
    "AutoModelForSeq2SeqLM",
    "AutoModelForSequenceClassification",
    "AutoModelForTokenClassification",
    "AutoTokenizer",
    "GenerationConfig",
    "LogitsProcessorList",
    "PreTrainedModel",
    "StoppingCriteriaList",
)

_prepared = threading.Event()


def prepare() -> None:
    """Import transformers and resolve `NAMES` (once; later calls return at once). ModelUnavailable
    when transformers cannot be imported."""
    if _prepared.is_set():
        return
    with LOAD_LOCK:
        if _prepared.is_set():
            return
        try:
            import transformers

            for name in NAMES:
                getattr(transformers, name)
        except (ImportError, AttributeError) as e:
            raise ModelUnavailable(f"The inference worker cannot load models: {e}") from e
        _prepared.set()


def from_pretrained(
    cls: Any, path: Path, *, model: str, may_miss: tuple[str, ...] = (), **kwargs: Any
) -> Any:
    """`cls.from_pretrained(path, **kwargs)` under the load lock, in eval mode. Raises ModelUnavailable
    when the checkpoint lacks weights of the model (the ones starting with a `may_miss` prefix are
    allowed: parts the caller never uses, such as a BERT pooler for embeddings)."""
    with LOAD_LOCK:
        loaded, info = cls.from_pretrained(path, output_loading_info=True, **kwargs)
    missing = sorted(key for key in info.get("missing_keys") or () if not key.startswith(may_miss))
    missing += sorted(str(entry[0]) for entry in info.get("mismatched_keys") or ())
    if missing:
        shown = ", ".join(missing[:10]) + (f" and {len(missing) - 10} more" if len(missing) > 10 else "")
        raise ModelUnavailable(
            f"Model '{model}' could not be loaded from {path}: the checkpoint lacks weights the model "
            f"needs ({shown}); they would be randomly initialised"
        )
    return loaded.eval()
