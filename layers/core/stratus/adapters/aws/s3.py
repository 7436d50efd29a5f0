"""ObjectStorage on S3. Every write is encrypted (SSE-S3, AES256), presigned uploads included."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

from boto3.exceptions import RetriesExceededError, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.exceptions import BotoCoreError, ClientError

from stratus.adapters.aws._errors import classify, translate
from stratus.errors import InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.storage import ObjectInfo, PresignedUpload

SSE = "AES256"
DELETE_BATCH = 1000  # DeleteObjects' limit
MAX_PRESIGN_S = 7 * 24 * 3600  # SigV4's limit
# Multipart above 16 MiB, 4 parts in flight: fast enough, and modest on a Lambda's memory.
TRANSFER_CONFIG = TransferConfig(
    multipart_threshold=16 * 1024 * 1024, multipart_chunksize=16 * 1024 * 1024, max_concurrency=4
)
_BotoErrors = (ClientError, BotoCoreError)
_UNSAFE_FILENAME = re.compile(r'[\x00-\x1f\x7f"\\/;]')


class S3Storage:
    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self.bucket = bucket

    # --- writes --------------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": key,
            "Body": data,
            "ServerSideEncryption": SSE,
        }
        if content_type:
            params["ContentType"] = content_type
        try:
            response = await asyncio.to_thread(self._client.put_object, **params)
        except _BotoErrors as e:
            raise translate(e, "storage") from e
        return ObjectInfo(key=key, size=len(data), content_type=content_type, etag=_etag(response))

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        extra: dict[str, str] = {"ServerSideEncryption": SSE}
        if content_type:
            extra["ContentType"] = content_type

        def upload() -> int:
            self._client.upload_file(
                Filename=str(path), Bucket=self.bucket, Key=key, ExtraArgs=extra, Config=TRANSFER_CONFIG
            )
            return path.stat().st_size

        try:
            size = await asyncio.to_thread(upload)
        except S3UploadFailedError as e:
            # boto3 wraps the ClientError without chaining it explicitly; it is the implicit context.
            cause = e.__cause__ or e.__context__
            if isinstance(cause, ClientError):
                raise translate(cause, "storage") from e
            raise ServiceUnavailable("Storage upload failed, please retry") from e
        except _BotoErrors as e:
            raise translate(e, "storage") from e
        return ObjectInfo(key=key, size=size, content_type=content_type)

    # --- reads ---------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        def read() -> bytes:
            body = self._client.get_object(Bucket=self.bucket, Key=key)["Body"]
            try:
                return bytes(body.read())
            finally:
                body.close()

        try:
            return await asyncio.to_thread(read)
        except _BotoErrors as e:
            raise translate(e, "storage", key=key) from e

    async def download_to(self, key: str, path: Path) -> None:
        try:
            await asyncio.to_thread(
                self._client.download_file,
                Bucket=self.bucket,
                Key=key,
                Filename=str(path),
                Config=TRANSFER_CONFIG,
            )
        except RetriesExceededError as e:
            raise ServiceUnavailable("Storage download failed, please retry") from e
        except _BotoErrors as e:
            raise translate(e, "storage", key=key) from e

    async def iter_chunks(self, key: str, chunk_size: int = 1024 * 1024) -> AsyncIterator[bytes]:
        """Stream the object; each read runs in a worker thread, so the event loop never blocks on S3."""
        try:
            response = await asyncio.to_thread(self._client.get_object, Bucket=self.bucket, Key=key)
        except _BotoErrors as e:
            raise translate(e, "storage", key=key) from e
        body = response["Body"]
        try:
            while True:
                try:
                    chunk = await asyncio.to_thread(body.read, chunk_size)
                except _BotoErrors as e:
                    raise translate(e, "storage") from e
                if not chunk:
                    return
                yield bytes(chunk)
        finally:
            body.close()

    async def head(self, key: str) -> ObjectInfo | None:
        try:
            response = await asyncio.to_thread(self._client.head_object, Bucket=self.bucket, Key=key)
        except _BotoErrors as e:
            error = translate(e, "storage", key=key)
            if isinstance(error, NotFound):
                return None
            raise error from e
        return ObjectInfo(
            key=key,
            size=int(response.get("ContentLength", 0)),
            content_type=response.get("ContentType"),
            etag=_etag(response),
        )

    # --- deletes -------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        try:
            await asyncio.to_thread(self._client.delete_object, Bucket=self.bucket, Key=key)
        except _BotoErrors as e:
            error = translate(e, "storage", key=key)
            if not isinstance(error, NotFound):
                raise error from e

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object under `prefix`; the number deleted. An empty prefix is refused."""
        if not prefix:
            raise InvalidInput("Refusing to delete every object in the bucket (empty prefix)")
        try:
            return await asyncio.to_thread(self._delete_prefix, prefix)
        except _BotoErrors as e:
            raise translate(e, "storage") from e

    def _delete_prefix(self, prefix: str) -> int:
        deleted = 0
        for keys in self._list_batches(prefix):
            response = self._client.delete_objects(
                Bucket=self.bucket,
                Delete={"Objects": [{"Key": key} for key in keys], "Quiet": True},
            )
            errors = response.get("Errors") or []
            deleted += len(keys) - len(errors)
            if errors:
                first = errors[0]
                cls = classify(str(first.get("Code") or ""))
                if cls is NotFound:  # gone already: that is what we wanted
                    continue
                raise cls(
                    f"Storage could not delete {len(errors)} object(s)",
                    details={"aws_error": first.get("Code"), "deleted": deleted},
                )
        return deleted

    def _list_batches(self, prefix: str) -> Iterator[list[str]]:
        paginator = self._client.get_paginator("list_objects_v2")
        batch: list[str] = []
        for page in paginator.paginate(
            Bucket=self.bucket, Prefix=prefix, PaginationConfig={"PageSize": DELETE_BATCH}
        ):
            for item in page.get("Contents") or []:
                batch.append(item["Key"])
                if len(batch) == DELETE_BATCH:
                    yield batch
                    batch = []
        if batch:
            yield batch

    # --- presigned URLs ------------------------------------------------------------------------

    async def presign_get(self, key: str, *, expires_in: int = 900, filename: str | None = None) -> str:
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key}
        if filename:
            params["ResponseContentDisposition"] = content_disposition(filename)
        return await self._presign("get_object", params, expires_in)

    async def presign_put(
        self, key: str, *, expires_in: int = 900, content_type: str | None = None
    ) -> PresignedUpload:
        """A URL for one PUT. The returned headers are signed into it: the client must send them as is."""
        params: dict[str, str] = {"Bucket": self.bucket, "Key": key, "ServerSideEncryption": SSE}
        candidates = {"x-amz-server-side-encryption": ("x-amz-server-side-encryption", SSE)}
        if content_type:
            params["ContentType"] = content_type
            candidates["content-type"] = ("Content-Type", content_type)
        url = await self._presign("put_object", params, expires_in)
        signed = _signed_headers(url)
        headers = dict(header for name, header in candidates.items() if name in signed)
        return PresignedUpload(url=url, method="PUT", headers=headers, expires_in=expires_in)

    async def _presign(self, operation: str, params: dict[str, str], expires_in: int) -> str:
        if not 1 <= expires_in <= MAX_PRESIGN_S:
            raise InvalidInput(f"expires_in must be between 1 and {MAX_PRESIGN_S} seconds")
        try:
            # Local signing, but resolving credentials may touch the network (container credentials).
            url = await asyncio.to_thread(
                self._client.generate_presigned_url, operation, Params=params, ExpiresIn=expires_in
            )
        except _BotoErrors as e:
            raise translate(e, "storage") from e
        return str(url)

    # --- health --------------------------------------------------------------------------------

    async def ping(self) -> None:
        try:
            await asyncio.to_thread(self._client.head_bucket, Bucket=self.bucket)
        except _BotoErrors as e:
            raise ServiceUnavailable("Storage is unavailable") from e


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII fallback name and the exact UTF-8 name (RFC 6266 / RFC 5987)."""
    name = Path(filename.replace("\\", "/")).name or "download"
    fallback = _UNSAFE_FILENAME.sub("_", name.encode("ascii", "replace").decode("ascii").replace("?", "_"))
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def _signed_headers(url: str) -> set[str]:
    values = parse_qs(urlsplit(url).query).get("X-Amz-SignedHeaders", [""])
    return {name for name in values[0].split(";") if name}


def _etag(response: dict[str, Any]) -> str | None:
    etag = response.get("ETag")
    return str(etag).strip('"') if etag else None
