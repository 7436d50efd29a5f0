"""The `download` job kind: snapshot a Hugging Face Hub repository into object storage.

The API never downloads (a 500 MB model outlives a Lambda and its /tmp); this container job does. It
lists the repository's files at one commit, fetches each through huggingface_hub, uploads it under
the job's output prefix (`<prefix>/snapshot/<path in the repository>`) and reports progress in files
and bytes. The result describes the model (architecture, parameter count read from the safetensors
headers, labels, maximum sequence length, size) so the registry answers /models/{name}/info without
loading it.

Params: `repo_id`, `revision` (default "main"), `task`, `timeout_s` (how long the hub may take to
answer, default 10), `max_bytes` (refuse larger repositories before fetching anything). The endpoint
is huggingface_hub's (`HF_ENDPOINT`). With the hub unreachable or `HF_HUB_OFFLINE=1` the job fails
within `timeout_s` with that reason; a failed or stopped download removes what it had uploaded.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from stratus_worker.inference.registry import reachable
from stratus_worker.runtime import JobContext, JobFailed, JobStopped, Outcome
from stratus_worker.storage import upload_file

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 10.0
DEFAULT_MAX_BYTES = 20 * 10**9
PROGRESS_EVERY_S = 0.5
# Copies of the weights for other frameworks or runtimes: the platform loads PyTorch weights.
OTHER_FRAMEWORKS = (".h5", ".msgpack", ".ot", ".tflite", ".onnx", ".onnx_data", ".mlmodel", ".gguf")
OTHER_FRAMEWORK_DIRS = ("onnx/", "openvino/", "coreml/", "tf/", "flax/", "tflite/")
PICKLED_WEIGHTS = (".bin", ".pt", ".pth", ".ckpt")


def run(ctx: JobContext) -> Outcome:
    from huggingface_hub import HfApi, constants

    repo_id = str(ctx.params.get("repo_id") or "")
    if not repo_id:
        raise JobFailed("The download job has no repo_id")
    revision = str(ctx.params.get("revision") or "main")
    timeout = float(ctx.params.get("timeout_s") or DEFAULT_TIMEOUT_S)
    max_bytes = int(ctx.params.get("max_bytes") or DEFAULT_MAX_BYTES)
    endpoint = constants.ENDPOINT
    if constants.HF_HUB_OFFLINE:
        raise JobFailed(f"'{repo_id}' was not downloaded: the worker is offline (HF_HUB_OFFLINE is set)")
    if not reachable(endpoint, timeout):
        raise JobFailed(
            f"'{repo_id}' was not downloaded: the Hugging Face Hub ({endpoint}) could not be reached "
            f"within {timeout:g} s (no network from the worker?)"
        )

    info = _model_info(HfApi(endpoint=endpoint), repo_id, revision, timeout)
    files = select_files((s.rfilename, int(s.size or 0)) for s in info.siblings or [])
    if not files:
        raise JobFailed(f"'{repo_id}' has no files this platform can load (PyTorch weights and configs)")
    total = sum(size for _, size in files)
    if total > max_bytes:
        raise JobFailed(
            f"'{repo_id}' is {total / 1e9:.1f} GB, over the {max_bytes / 1e9:.1f} GB download limit"
        )
    return _Snapshot(ctx, repo_id, str(info.sha), files, timeout, endpoint).fetch()


def _model_info(api: Any, repo_id: str, revision: str, timeout: float) -> Any:
    from huggingface_hub.errors import (
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        return api.model_info(repo_id, revision=revision, files_metadata=True, timeout=timeout)
    except GatedRepoError as e:
        raise JobFailed(f"'{repo_id}' is gated on the Hugging Face Hub; accept its terms first") from e
    except RevisionNotFoundError as e:
        raise JobFailed(f"'{repo_id}' has no revision '{revision}' on the Hugging Face Hub") from e
    except RepositoryNotFoundError as e:
        raise JobFailed(f"'{repo_id}' was not found on the Hugging Face Hub") from e
    except (HfHubHTTPError, OSError) as e:
        raise JobFailed(f"Could not read '{repo_id}' from the Hugging Face Hub: {e}") from e


def select_files(files: Iterable[tuple[str, int]]) -> list[tuple[str, int]]:
    """The files worth fetching: configs, tokenizers and one copy of the PyTorch weights (safetensors
    when the repository has them; other frameworks' copies never)."""
    candidates = [
        (name, size)
        for name, size in files
        if not name.startswith(".")
        and not name.endswith(OTHER_FRAMEWORKS)
        and not name.startswith(OTHER_FRAMEWORK_DIRS)
    ]
    if any(name.endswith(".safetensors") for name, _ in candidates):
        candidates = [(name, size) for name, size in candidates if not name.endswith(PICKLED_WEIGHTS)]
    return sorted(candidates)


class _Snapshot:
    """One download: fetch, upload, describe; on failure or stop, remove what was uploaded."""

    def __init__(
        self,
        ctx: JobContext,
        repo_id: str,
        commit: str,
        files: list[tuple[str, int]],
        timeout: float,
        endpoint: str,
    ) -> None:
        self.ctx = ctx
        self.repo_id = repo_id
        self.commit = commit
        self.files = files
        self.timeout = timeout
        self.endpoint = endpoint
        self.prefix = ctx.artifact_key("snapshot")
        self.total_bytes = sum(size for _, size in files)
        self.done_bytes = 0  # including the part of the file being fetched
        self.completed_bytes = 0
        self.done_files = 0
        self.uploaded: list[str] = []
        self.config: dict[str, Any] = {}
        self.model_index: dict[str, Any] = {}  # a diffusers repository's model_index.json
        self.tokenizer_config: dict[str, Any] = {}
        self.parameters = 0
        self._last_progress = 0.0

    def fetch(self) -> Outcome:
        local_dir = self.ctx.workdir / "snapshot"
        try:
            self._report(force=True)
            for name, size in self.files:
                if self.ctx.should_stop:
                    raise JobStopped()
                path = self._download(name, local_dir)
                self._read_metadata(name, path)
                key = f"{self.prefix}/{name}"
                upload_file(self.ctx.storage, key, path, _content_type(name))
                self.uploaded.append(key)
                path.unlink()  # disk holds one file at a time, however large the model
                self.done_files += 1
                self.completed_bytes += size
                self.done_bytes = self.completed_bytes
                self._report(force=True)
        except Exception:  # failed or stopped: nothing half-uploaded stays behind
            self._remove_uploaded()
            raise
        return Outcome(
            artifacts={"snapshot": self.prefix},
            model=self.describe(),
            final_metrics={"files": self.done_files, "bytes": self.total_bytes},
        )

    def _download(self, name: str, local_dir: Path) -> Path:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import HfHubHTTPError

        start = self.completed_bytes
        try:
            path = hf_hub_download(
                self.repo_id,
                name,
                revision=self.commit,
                local_dir=local_dir,
                etag_timeout=self.timeout,
                endpoint=self.endpoint,
                tqdm_class=_byte_meter(lambda n: self._on_bytes(start, n)),
            )
        except (HfHubHTTPError, OSError) as e:
            raise JobFailed(f"Could not download {name} of '{self.repo_id}': {e}") from e
        return Path(str(path))

    def _on_bytes(self, start: int, received: int) -> None:
        self.done_bytes = start + received
        self._report()

    def _report(self, *, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._last_progress < PROGRESS_EVERY_S:
            return
        self._last_progress = now
        self.ctx.events.download_progress(
            files_done=self.done_files,
            files_total=len(self.files),
            bytes_done=self.done_bytes,
            bytes_total=self.total_bytes,
        )

    def _read_metadata(self, name: str, path: Path) -> None:
        if name == "config.json":
            self.config = _json(path)
        elif name == "model_index.json":
            self.model_index = _json(path)
        elif name == "tokenizer_config.json":
            self.tokenizer_config = _json(path)
        elif name.endswith(".safetensors"):
            self.parameters += safetensors_parameters(path)

    def describe(self) -> dict[str, Any]:
        config = self.config
        id2label = config.get("id2label") or {}
        labels = [id2label[k] for k in sorted(id2label, key=lambda k: int(k))] if id2label else None
        max_length = config.get("max_position_embeddings") or config.get("n_positions")
        tokenizer_max = self.tokenizer_config.get("model_max_length")
        if isinstance(tokenizer_max, int) and tokenizer_max < 10**6:  # "unlimited" is 1e30 there
            max_length = min(max_length, tokenizer_max) if max_length else tokenizer_max
        architectures = config.get("architectures") or []
        if not architectures and self.model_index.get("_class_name"):
            # A diffusers pipeline (StableDiffusionPipeline, ...): the media generation routes run it.
            architectures = [self.model_index["_class_name"]]
            config = {**config, "model_type": "diffusers"}
        return {
            "repo_id": self.repo_id,
            "commit": self.commit,
            "model_type": config.get("model_type"),
            "architecture": architectures[0] if architectures else None,
            "parameters": self.parameters or None,
            "size_mb": round(self.total_bytes / 1e6, 1),
            "files": len(self.files),
            "file_names": [name for name, _ in self.files],
            "labels": labels,
            "max_sequence_length": max_length,
        }

    def _remove_uploaded(self) -> None:
        for key in self.uploaded:
            try:
                asyncio.run(self.ctx.storage.delete(key))
            except Exception:
                log.warning("could not remove %s after the download ended early", key, exc_info=True)


def safetensors_parameters(path: Path) -> int:
    """The number of values in a safetensors file, from its header (8-byte length, then JSON)."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def _json(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise JobFailed(f"{path.name} is not valid JSON: {e}") from e
    return doc if isinstance(doc, dict) else {}


def _content_type(name: str) -> str:
    return "application/json" if name.endswith(".json") else "application/octet-stream"


def _byte_meter(on_bytes: Callable[[int], None]) -> type:
    """A tqdm class that reports the bytes received so far (huggingface_hub drives it per chunk)."""
    from tqdm.auto import tqdm

    class ByteMeter(tqdm):  # type: ignore[misc]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = True  # no bars in job logs; counting still happens below
            super().__init__(*args, **kwargs)
            self.received = 0

        def update(self, n: float | None = 1) -> bool | None:
            self.received += int(n or 0)
            on_bytes(self.received)
            return super().update(n)  # type: ignore[no-any-return]

    return ByteMeter
