"""The worker's object storage and event sink, chosen from the environment as the API chooses its own.

Locally: the directory `STRATUS_STORAGE_ROOT` (default `<STRATUS_STATE_DIR>/objects`, where
`stratus serve` keeps its objects) and a JSON Lines file of events. In AWS (`STRATUS_RUNTIME=aws`): the
artifacts bucket on S3 and, when `STRATUS_EVENT_BUS_NAME` is set, EventBridge. The worker code is
synchronous (it is one training loop), so the async port is driven with `asyncio.run` per call.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import model_validator

from stratus.ports.storage import ObjectStorage
from stratus.settings import Settings
from stratus_worker.events import BusSink, EventSink, FileSink

# The worker never signs URLs, but the local adapter's constructor wants a base URL and a key.
LOCAL_BASE_URL = "http://worker"
UNUSED_SIGNING_KEY = "unused"


class WorkerSettings(Settings):
    """Settings without the API's start-up checks: the worker holds no secrets and never opens the
    database, so runtime "aws" must not insist on MONGODB_URI or real JWT secrets here."""

    @model_validator(mode="after")
    def _refuse_default_secrets(self) -> WorkerSettings:
        return self


def build_storage(environ: Mapping[str, str]) -> ObjectStorage:
    settings = WorkerSettings()
    if settings.runtime == "aws":
        from stratus.adapters.aws import clients
        from stratus.adapters.aws.s3 import S3Storage

        if not settings.artifacts_bucket:
            raise ValueError("STRATUS_ARTIFACTS_BUCKET must be set when STRATUS_RUNTIME is aws")
        return S3Storage(clients.s3(settings), settings.artifacts_bucket)
    from stratus.adapters.local.storage import LocalDirectoryStorage

    root = environ.get("STRATUS_STORAGE_ROOT") or str(settings.state_dir / "objects")
    return LocalDirectoryStorage(Path(root), base_url=LOCAL_BASE_URL, signing_secret=UNUSED_SIGNING_KEY)


def build_sink(environ: Mapping[str, str], workdir: Path) -> EventSink:
    if environ.get("STRATUS_RUNTIME") == "aws" and environ.get("STRATUS_EVENT_BUS_NAME"):
        from stratus.adapters.aws import clients
        from stratus.adapters.aws.eventbridge import EventBridgeBus

        settings = WorkerSettings()
        return BusSink(EventBridgeBus(clients.events(settings), settings.event_bus_name))
    return FileSink(Path(environ.get("STRATUS_EVENTS_FILE") or workdir / "events.jsonl"))


def download(storage: ObjectStorage, key: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    asyncio.run(storage.download_to(key, path))


def upload_file(storage: ObjectStorage, key: str, path: Path, content_type: str) -> None:
    asyncio.run(storage.put_file(key, path, content_type=content_type))


def upload_json(storage: ObjectStorage, key: str, doc: Any) -> int:
    """Upload `doc` as JSON; its size in bytes."""
    data = json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()
    asyncio.run(storage.put_bytes(key, data, content_type="application/json"))
    return len(data)


def load_params(storage: ObjectStorage, key: str) -> dict[str, Any]:
    """Job params stored by the dispatcher when they were too long for the environment."""
    params = json.loads(asyncio.run(storage.get_bytes(key)))
    if not isinstance(params, dict):
        raise ValueError(f"{key} must hold a JSON object")
    return params
