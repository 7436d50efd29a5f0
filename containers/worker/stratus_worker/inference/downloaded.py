"""Downloaded (hub) models: copied from object storage into the model cache on first use, then served by
the same backends as the built-in ones.

A request for a downloaded model carries its `source` (see `stratus.capabilities.nlp.service`): the snapshot's
storage prefix, its file names, architecture, model type, maximum sequence length and the commit. The
files are copied once into `<cache>/downloaded/<hash of the prefix>/`; a copy is written to a temporary
directory and renamed into place, so a crash never leaves a partial directory that looks complete.
The engine key is `name@commit`: two users' downloads of one commit are the same weights and share
one loaded model (each user can only name their own downloads; the API checks that).
"""

from __future__ import annotations

import asyncio
import hashlib
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stratus.errors import DomainError
from stratus.ml.catalogue import downloaded_serving
from stratus.ports.storage import ObjectStorage
from stratus_worker.inference.errors import InvalidInput, ModelUnavailable
from stratus_worker.inference.registry import ModelSpec

DEFAULT_MAX_LENGTH = 512


def engine_key(name: str, source: Mapping[str, Any]) -> str:
    return f"{name}@{source.get('revision') or hashlib.sha256(str(source['snapshot']).encode()).hexdigest()[:12]}"


def check_source(source: Any) -> Mapping[str, Any]:
    if (
        not isinstance(source, dict)
        or not isinstance(source.get("snapshot"), str)
        or not isinstance(source.get("files"), list)
        or not all(isinstance(f, str) and ".." not in f.split("/") for f in source["files"])
    ):
        raise InvalidInput("'source' must be an object with a 'snapshot' prefix and its 'files'")
    return source


def spec_for(name: str, source: Mapping[str, Any], path: Path) -> ModelSpec:
    serving = downloaded_serving(source.get("architecture"), source.get("model_type"))
    if serving is None:
        raise ModelUnavailable(
            f"Model '{name}' ({source.get('architecture')}) is downloaded, but downloaded models of this "
            "architecture are not served yet (encoders, classification, span and token heads, encoder-decoders "
            "and causal LMs are)"
        )
    loader, tasks = serving
    return ModelSpec(
        name=engine_key(name, source),
        tasks=tasks,
        architecture=str(source.get("architecture")),
        parameters=int(source.get("parameters") or 0),
        size_mb=float(source.get("size_mb") or 0.0),
        max_sequence_length=int(source.get("max_sequence_length") or DEFAULT_MAX_LENGTH),
        loader=loader,  # type: ignore[arg-type]
        package="",
        subpath="",
        distribution="POST /models/download",
        source="hub",
        extra={"path": str(path)},
    )


def fetch(storage: ObjectStorage, source: Mapping[str, Any], cache_dir: Path) -> Path:
    """The snapshot's local directory, copied from storage the first time."""
    snapshot = str(source["snapshot"]).rstrip("/")
    target = cache_dir / "downloaded" / hashlib.sha256(snapshot.encode()).hexdigest()[:24]
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".partial-", dir=target.parent))
    try:
        for name in source["files"]:
            destination = partial / name
            destination.parent.mkdir(parents=True, exist_ok=True)
            asyncio.run(storage.download_to(f"{snapshot}/{name}", destination))
        try:
            partial.rename(target)
        except OSError:  # another request finished the same copy first
            if not target.is_dir():
                raise
    except DomainError as e:
        raise ModelUnavailable(f"The downloaded model's files could not be read: {e.message}") from e
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target
