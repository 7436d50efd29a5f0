"""Datasets: upload (direct or presigned), parse off the request path when large, read rows, delete.

Ordering rules that keep storage and database consistent: validate before storing anything; store the
bytes before the record; if the record or the processing message cannot be written, remove what was
written. A failed parse leaves a `failed` record that says why, and no bytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from bson import ObjectId

from stratus.capabilities.datasets.spec import PROCESS_MESSAGE
from stratus.datasets.formats import DatasetFormat, detect_format
from stratus.datasets.ingest import (
    DatasetSummary,
    IngestLimits,
    ParseTooSlow,
    analyse,
    expanded_size,
    read_rows,
    validate_zip,
)
from stratus.db.repositories.datasets import DatasetRepository
from stratus.db.repositories.jobs import JobRepository
from stratus.db.repositories.users import UserRepository
from stratus.errors import Conflict, DomainError, InvalidInput, NotFound, PayloadTooLarge, ServiceUnavailable
from stratus.ports.events import Event, EventBus
from stratus.ports.queue import MessageQueue
from stratus.ports.storage import ObjectStorage, PresignedUpload
from stratus.schemas.common import utcnow
from stratus.services.uploads import SpooledUpload, safe_filename

log = logging.getLogger(__name__)

PROCESSED_EVENT = "dataset.processed"
EVENT_SOURCE = "stratus.datasets"
HEAD_BYTES = 8192
CONTENT_TYPES = {
    DatasetFormat.CSV: "text/csv",
    DatasetFormat.JSON: "application/json",
    DatasetFormat.JSONL: "application/x-ndjson",
    DatasetFormat.ZIP: "application/zip",
}


@dataclass(frozen=True)
class DatasetPolicy:
    """From the settings (STRATUS_MAX_PRESIGNED_UPLOAD_BYTES, STRATUS_INLINE_PARSE_*, the dataset limits)."""

    max_upload_bytes: int
    # Uploads that expand to at most this many bytes are parsed in the request, within
    # `inline_parse_s`; larger ones, and slower ones, are parsed by a worker under `limits`.
    inline_parse_bytes: int
    inline_parse_s: float
    limits: IngestLimits
    presign_ttl_s: int = 900


def summary_fields(summary: DatasetSummary) -> dict[str, Any]:
    """What a parse adds to the record: seed 003's counts and preview, seed 001's metadata."""
    return {
        "format": str(summary.format),
        "kind": summary.kind,
        "row_count": summary.row_count,
        "column_count": summary.column_count,
        "preview_data": {"headers": summary.headers, "rows": summary.preview_rows},
        "columns": [
            {"name": c.name, "type": c.type, "nulls": c.nulls, "non_null": c.non_null}
            for c in summary.columns
        ],
        "metadata": {
            "rows": summary.row_count,
            "columns": summary.column_count,
            "features": summary.features,
            "target": summary.target,
            # Stored as lists, not dicts: user-chosen names ("a.b", "$x") are not safe MongoDB keys.
            "classes": [{"label": k, "count": v} for k, v in summary.classes.items()]
            if summary.classes
            else None,
        },
    }


class DatasetService:
    def __init__(
        self,
        *,
        datasets: DatasetRepository,
        users: UserRepository,
        jobs: JobRepository,
        storage: ObjectStorage,
        queue: MessageQueue,
        bus: EventBus,
        scratch_dir: Path,
        policy: DatasetPolicy,
    ) -> None:
        self._datasets = datasets
        self._users = users
        self._jobs = jobs
        self._storage = storage
        self._queue = queue
        self._bus = bus
        self._scratch = scratch_dir
        self.policy = policy

    @staticmethod
    def object_key(user_id: ObjectId, dataset_id: ObjectId, filename: str) -> str:
        return f"users/{user_id}/datasets/{dataset_id}/{filename}"

    # --- direct upload ---------------------------------------------------------------------------

    async def upload(
        self,
        user_id: ObjectId,
        upload: SpooledUpload,
        *,
        name: str | None,
        description: str | None,
        dataset_type: str | None,
    ) -> dict[str, Any]:
        fmt, expanded = await asyncio.to_thread(
            self._check_file, upload.path, upload.size, upload.filename, upload.content_type
        )
        summary = None
        # Judged on what the parse has to read: a small ZIP can expand to far more than its size.
        if expanded <= self.policy.inline_parse_bytes:
            summary = await self._parse_inline(upload.path, fmt, dataset_type)
        dataset_id = ObjectId()
        key = self.object_key(user_id, dataset_id, upload.filename)
        await self._storage.put_file(key, upload.path, content_type=CONTENT_TYPES[fmt])
        doc = self._new_record(
            dataset_id, user_id, key, upload.filename, upload.size, fmt, name, description, dataset_type
        )
        if summary is not None:
            doc.update(status="ready", processed_at=utcnow(), **summary_fields(summary))
        else:
            doc["status"] = "processing"
        created = await self._insert_or_clean_up(doc, keys=[key])
        if summary is None:
            await self._schedule_processing(created)
        else:
            await self._publish_processed(created)
        return created

    async def _parse_inline(
        self, path: Path, fmt: DatasetFormat, dataset_type: str | None
    ) -> DatasetSummary | None:
        """The summary, or None when the parse outgrew the request's time budget (a worker does it).
        A bad file, or one over the row limit, fails here, before a byte is stored."""
        limits = replace(self.policy.limits, max_parse_s=self.policy.inline_parse_s)
        try:
            return await asyncio.to_thread(analyse, path, fmt, dataset_type=dataset_type, limits=limits)
        except ParseTooSlow:
            log.info("inline parse of %s passed %s s; handing it to a worker", fmt, limits.max_parse_s)
            return None

    def _check_file(
        self, path: Path, size: int, filename: str, content_type: str | None
    ) -> tuple[DatasetFormat, int]:
        """The format, and the bytes a parse reads (a ZIP's members, decompressed); refuses a bad file."""
        if size == 0:
            raise InvalidInput("Dataset file is empty", code="EMPTY_FILE")
        if size > self.policy.max_upload_bytes:
            raise PayloadTooLarge(
                f"File exceeds the {self.policy.max_upload_bytes} byte limit", code="FILE_TOO_LARGE"
            )
        with path.open("rb") as f:
            head = f.read(HEAD_BYTES)
        fmt = detect_format(filename, head, content_type)
        if fmt is DatasetFormat.ZIP:
            # Central directory only: cheap, and before storing.
            return fmt, expanded_size(validate_zip(path, self.policy.limits))
        return fmt, size

    def _new_record(
        self,
        dataset_id: ObjectId,
        user_id: ObjectId,
        key: str,
        filename: str,
        size: int,
        fmt: DatasetFormat | None,
        name: str | None,
        description: str | None,
        dataset_type: str | None,
    ) -> dict[str, Any]:
        return {
            "_id": dataset_id,
            "user_id": user_id,
            "name": name or filename,
            "file_name": filename,
            "description": description,
            "dataset_type": dataset_type,
            "format": str(fmt) if fmt else None,
            "file_size": size,
            "object_key": key,
            "error": None,
            "row_count": None,
            "column_count": None,
            "preview_data": None,
            "metadata": None,
        }

    async def _insert_or_clean_up(self, doc: dict[str, Any], *, keys: list[str]) -> dict[str, Any]:
        try:
            created = await self._datasets.insert(doc)
            await self._users.increment(doc["user_id"], "datasets_count")
        except BaseException:
            await self._forget(doc, keys)
            raise
        return created

    async def _forget(self, doc: dict[str, Any], keys: list[str]) -> None:
        with contextlib.suppress(DomainError):
            await self._datasets.delete(doc["_id"])
        for key in keys:
            try:
                await self._storage.delete(key)
            except DomainError:
                log.warning("could not delete object %s after a failed upload", key, exc_info=True)

    async def _schedule_processing(self, doc: dict[str, Any]) -> None:
        try:
            await self._queue.send(
                {"type": PROCESS_MESSAGE, "dataset_id": str(doc["_id"])}, deduplication_id=str(doc["_id"])
            )
        except DomainError as e:
            # Nobody would ever parse it: undo the upload rather than leave a dataset stuck in `processing`.
            await self._forget(doc, [doc["object_key"]])
            with contextlib.suppress(DomainError):
                await self._users.increment(doc["user_id"], "datasets_count", -1)
            raise ServiceUnavailable(
                "Could not schedule dataset processing; nothing was stored, please retry"
            ) from e

    # --- presigned upload ------------------------------------------------------------------------

    async def request_upload(
        self,
        user_id: ObjectId,
        *,
        filename: str,
        size: int,
        content_type: str | None,
        name: str | None,
        description: str | None,
        dataset_type: str | None,
    ) -> tuple[dict[str, Any], PresignedUpload]:
        if size > self.policy.max_upload_bytes:
            raise PayloadTooLarge(
                f"File exceeds the {self.policy.max_upload_bytes} byte limit", code="FILE_TOO_LARGE"
            )
        dataset_id = ObjectId()
        filename = safe_filename(filename)
        key = self.object_key(user_id, dataset_id, filename)
        presigned = await self._storage.presign_put(
            key, expires_in=self.policy.presign_ttl_s, content_type=content_type
        )
        doc = self._new_record(
            dataset_id, user_id, key, filename, size, None, name, description, dataset_type
        )
        # The record outlives the URL by an hour so a slow upload can still be confirmed.
        expires = utcnow() + timedelta(seconds=self.policy.presign_ttl_s + 3600)
        doc.update(status="awaiting_upload", upload_expires_at=expires)
        # Not counted against datasets_count until the upload is confirmed.
        return await self._datasets.insert(doc), presigned

    async def complete_upload(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any]:
        doc = await self._owned(user_id, dataset_id)
        if doc["status"] != "awaiting_upload":
            raise Conflict(f"Upload already confirmed (status: {doc['status']})", code="ALREADY_CONFIRMED")
        info = await self._storage.head(doc["object_key"])
        if info is None:
            raise InvalidInput("No file has been uploaded to the upload URL yet", code="UPLOAD_MISSING")
        if info.size == 0 or info.size > self.policy.max_upload_bytes:
            await self._storage.delete(doc["object_key"])
            if info.size == 0:
                raise InvalidInput("Dataset file is empty", code="EMPTY_FILE")
            raise PayloadTooLarge(
                f"File exceeds the {self.policy.max_upload_bytes} byte limit", code="FILE_TOO_LARGE"
            )
        moved = await self._datasets.transition(
            dataset_id,
            from_status="awaiting_upload",
            changes={"status": "processing", "file_size": info.size},
            unset=("upload_expires_at",),
        )
        if moved is None:
            raise Conflict("Upload already confirmed", code="ALREADY_CONFIRMED")
        await self._users.increment(user_id, "datasets_count")
        await self._schedule_processing(moved)
        return moved

    # --- processing (queue consumer) -------------------------------------------------------------

    async def handle_message(self, body: Mapping[str, Any]) -> None:
        dataset_id = body.get("dataset_id")
        if not isinstance(dataset_id, str) or not ObjectId.is_valid(dataset_id):
            raise InvalidInput(f"dataset.process message without a valid dataset_id: {body!r}")
        await self.process(ObjectId(dataset_id))

    async def process(self, dataset_id: ObjectId) -> None:
        """Parse a stored upload. Idempotent: a redelivered message for a finished dataset does nothing."""
        doc = await self._datasets.get(dataset_id)
        if doc is None or doc["status"] != "processing":
            return
        await asyncio.to_thread(self._scratch.mkdir, parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self._scratch) as tmp:
            path = Path(tmp) / str(doc["file_name"])
            await self._storage.download_to(doc["object_key"], path)
            try:
                summary = await asyncio.to_thread(self._parse_stored, path, doc)
            except ServiceUnavailable:
                raise  # storage or database away: let the message be redelivered
            except DomainError as e:
                await self._fail(doc, e.message)
                return
        changes = {"status": "ready", "processed_at": utcnow(), **summary_fields(summary)}
        done = await self._datasets.transition(dataset_id, from_status="processing", changes=changes)
        if done is not None:
            await self._publish_processed(done)

    def _parse_stored(self, path: Path, doc: dict[str, Any]) -> DatasetSummary:
        fmt, _ = self._check_file(path, path.stat().st_size, str(doc["file_name"]), None)
        return analyse(path, fmt, dataset_type=doc.get("dataset_type"), limits=self.policy.limits)

    async def _fail(self, doc: dict[str, Any], reason: str) -> None:
        failed = await self._datasets.transition(
            doc["_id"],
            from_status="processing",
            changes={"status": "failed", "error": reason, "processed_at": utcnow()},
        )
        if failed is None:
            return
        # The bytes are of no use to anyone; the record stays so the user can see why it failed.
        with contextlib.suppress(DomainError):
            await self._storage.delete(doc["object_key"])
        await self._publish_processed(failed)

    async def _publish_processed(self, doc: dict[str, Any]) -> None:
        event = Event(
            detail_type=PROCESSED_EVENT,
            source=EVENT_SOURCE,
            detail={
                "dataset_id": str(doc["_id"]),
                "user_id": str(doc["user_id"]),
                "status": doc["status"],
                "error": doc.get("error"),
                "row_count": doc.get("row_count"),
            },
        )
        try:
            await self._bus.publish([event])
        except DomainError:
            # The record already says the truth; a lost notification must not fail the upload.
            log.warning("could not publish %s for %s", PROCESSED_EVENT, doc["_id"], exc_info=True)

    async def sweep(self, *, stale_after_s: int = 900, max_attempts: int = 3) -> int:
        """Datasets stuck in `processing` (a lost message, a restart of the local runtime): send their
        message again, and after `max_attempts` fail them with a reason. Returns how many it touched."""
        older = utcnow() - timedelta(seconds=stale_after_s)
        stale = await self._datasets.stale_processing(older)
        for doc in stale:
            attempts = int(doc.get("process_attempts", 1))
            if attempts >= max_attempts:
                await self._fail(
                    doc, "Processing did not finish after several attempts; please upload the file again"
                )
                continue
            moved = await self._datasets.transition(
                doc["_id"], from_status="processing", changes={"process_attempts": attempts + 1}
            )
            if moved is not None:
                with contextlib.suppress(DomainError):
                    await self._queue.send({"type": PROCESS_MESSAGE, "dataset_id": str(doc["_id"])})
        return len(stale)

    # --- reading and deleting --------------------------------------------------------------------

    async def _owned(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any]:
        return await self._datasets.require_owned(user_id, dataset_id)

    async def get(self, user_id: ObjectId, dataset_id: ObjectId) -> dict[str, Any]:
        return await self._owned(user_id, dataset_id)

    async def list_owned(
        self, user_id: ObjectId, *, sort_by: str, descending: bool, limit: int, offset: int
    ) -> tuple[list[dict[str, Any]], int]:
        return await self._datasets.list_owned(
            user_id, sort_by=sort_by, descending=descending, limit=limit, offset=offset
        )

    async def rows(
        self, user_id: ObjectId, dataset_id: ObjectId, *, offset: int, limit: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        doc = await self._owned(user_id, dataset_id)
        if doc["status"] != "ready":
            raise Conflict(f"Dataset is not ready (status: {doc['status']})", code="DATASET_NOT_READY")
        path = await self._local_copy(doc)
        column_types = {c["name"]: c["type"] for c in doc.get("columns") or []}
        rows = await asyncio.to_thread(
            read_rows,
            path,
            DatasetFormat(doc["format"]),
            offset=offset,
            limit=limit,
            column_types=column_types,
            limits=self.policy.limits,
        )
        return doc, rows

    async def _local_copy(self, doc: dict[str, Any]) -> Path:
        """Datasets never change once stored, so a local copy (Lambda's /tmp, the local state dir) stays valid."""
        cache = self._scratch / "cache" / str(doc["_id"])
        path: Path = cache / str(doc["file_name"])
        if not await asyncio.to_thread(path.exists):
            await asyncio.to_thread(cache.mkdir, parents=True, exist_ok=True)
            # A name per request: concurrent first reads must not share (and rename) one partial file.
            partial = cache / f"{doc['file_name']}.{uuid.uuid4().hex}.part"
            await self._storage.download_to(doc["object_key"], partial)
            await asyncio.to_thread(partial.replace, path)
        return path

    async def delete(self, user_id: ObjectId, dataset_id: ObjectId) -> None:
        doc = await self._owned(user_id, dataset_id)
        if await self._jobs.dataset_in_use(dataset_id):
            raise Conflict(
                "Dataset is in use by a running training job; stop the job first", code="DATASET_IN_USE"
            )
        if await self._datasets.delete_owned(user_id, dataset_id) is None:
            raise NotFound("Dataset not found")
        if doc["status"] != "awaiting_upload":
            await self._users.increment(user_id, "datasets_count", -1)
        try:
            await self._storage.delete(doc["object_key"])
        except DomainError:
            log.warning(
                "dataset %s deleted but its object %s was not", dataset_id, doc["object_key"], exc_info=True
            )
        await asyncio.to_thread(_rmtree, self._scratch / "cache" / str(dataset_id))


def _rmtree(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
