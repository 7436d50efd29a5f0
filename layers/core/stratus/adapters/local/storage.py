"""ObjectStorage on a local directory, with HMAC-signed URLs standing in for S3's presigned ones.

Layout: the object `a/b.csv` is the file `<root>/a/b.csv`; its content type and ETag live in the sidecar
`<root>/.meta/a/b.csv` (a mirror tree, so two keys collide there only if they collide as files). Writes
go to a temporary file in the target's directory and are renamed into place, so a reader never sees
half an object. File I/O runs in worker threads to keep the event loop free.

Signed URLs point at `stratus.api.routers.storage_local`, which checks them with `verify`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import hmac
import json
import os
import shutil
import stat
import time
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Callable
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import quote, urlencode

from stratus.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.storage import ObjectInfo, PresignedUpload

META_DIR = ".meta"
TEMP_PREFIX = ".~tmp-"  # in-progress writes; reserved, so no key can name one
MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_BYTES = 255  # most filesystems' name limit
MAX_PRESIGN_S = 7 * 24 * 3600  # S3's limit, kept so local code cannot rely on longer URLs
CHUNK = 1024 * 1024

T = TypeVar("T")


def validate_key(key: str) -> list[str]:
    """The key's path segments; InvalidInput for keys that cannot map safely onto the directory."""
    if not key:
        raise InvalidInput("Object key must not be empty")
    if "\\" in key or "\x00" in key:
        raise InvalidInput("Object key must not contain backslashes or NUL characters")
    if key.startswith("/"):
        raise InvalidInput("Object key must be relative (no leading '/')")
    if len(key.encode()) > MAX_KEY_BYTES:
        raise InvalidInput(f"Object key exceeds {MAX_KEY_BYTES} bytes")
    segments = key.split("/")
    for segment in segments:
        if segment in ("", ".", ".."):
            raise InvalidInput("Object key must not contain empty, '.' or '..' segments")
        if segment.startswith(TEMP_PREFIX) or len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidInput("Object key contains a reserved or overlong path segment")
    if segments[0] == META_DIR:
        raise InvalidInput(f"Object keys under {META_DIR}/ are reserved")
    return segments


class LocalDirectoryStorage:
    def __init__(self, root: Path, *, base_url: str, signing_secret: str) -> None:
        if not signing_secret:
            raise ValueError("signing_secret must not be empty")
        self.root = Path(root)
        self.base_url = base_url.rstrip("/")
        self._secret = signing_secret.encode()

    # --- writes --------------------------------------------------------------------------------

    async def put_bytes(self, key: str, data: bytes, *, content_type: str | None = None) -> ObjectInfo:
        def write() -> ObjectInfo:
            with self._writer(key) as writer:
                writer.write(data)
                return writer.commit(content_type)

        return await _io(write, key, writing=True)

    async def put_file(self, key: str, path: Path, *, content_type: str | None = None) -> ObjectInfo:
        """Copy a local file in 1 MiB chunks. A missing `path` raises FileNotFoundError (a caller bug)."""
        source = await asyncio.to_thread(Path(path).open, "rb")

        def write() -> ObjectInfo:
            with source, self._writer(key) as writer:
                while chunk := source.read(CHUNK):
                    writer.write(chunk)
                return writer.commit(content_type)

        return await _io(write, key, writing=True)

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> ObjectInfo:
        """Store an async stream of bytes (the signed-PUT endpoint's request body), in 1 MiB writes.

        If the stream raises, nothing is stored and the error propagates.
        """
        writer = await _io(lambda: self._writer(key), key, writing=True)
        try:
            buffer = bytearray()
            async for chunk in chunks:
                buffer += chunk
                if len(buffer) >= CHUNK:
                    data = bytes(buffer)
                    buffer.clear()
                    await _io(functools.partial(writer.write, data), key, writing=True)

            def finish() -> ObjectInfo:
                writer.write(bytes(buffer))
                return writer.commit(content_type)

            return await _io(finish, key, writing=True)
        finally:
            await asyncio.to_thread(writer.abort)

    def _writer(self, key: str) -> _AtomicWriter:
        segments = validate_key(key)
        return _AtomicWriter(self.root.joinpath(*segments), self.root.joinpath(META_DIR, *segments), key)

    # --- reads ---------------------------------------------------------------------------------

    async def get_bytes(self, key: str) -> bytes:
        return await _io(self._path(key).read_bytes, key)

    async def download_to(self, key: str, path: Path) -> None:
        source_path = self._path(key)
        source = await _io(lambda: source_path.open("rb"), key)

        def copy() -> None:
            with source, Path(path).open("wb") as target:
                shutil.copyfileobj(source, target, CHUNK)

        await asyncio.to_thread(copy)

    async def iter_chunks(self, key: str, chunk_size: int = CHUNK) -> AsyncIterator[bytes]:
        """Stream the object; raises NotFound on the first iteration when it does not exist."""
        _, chunks = await self.open_stream(key, chunk_size)
        async for chunk in chunks:
            yield chunk

    async def open_stream(self, key: str, chunk_size: int = CHUNK) -> tuple[ObjectInfo, AsyncIterator[bytes]]:
        """Open the object now (NotFound now) and stream it later. The info describes exactly the bytes
        streamed, even if the key is overwritten meanwhile: the open file keeps its version."""
        path = self._path(key)
        source = await _io(lambda: path.open("rb"), key)
        try:
            info = await _io(lambda: self._info(key, os.fstat(source.fileno()), etag=False), key)
        except BaseException:
            source.close()
            raise
        return info, _read_chunks(source, key, chunk_size)

    async def head(self, key: str) -> ObjectInfo | None:
        path = self._path(key)

        def look() -> ObjectInfo | None:
            try:
                st = path.stat()
            except (FileNotFoundError, NotADirectoryError):
                return None
            return None if stat.S_ISDIR(st.st_mode) else self._info(key, st, etag=True)

        return await _io(look, key)

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*validate_key(key))

    def _info(self, key: str, st: os.stat_result, *, etag: bool) -> ObjectInfo:
        """ObjectInfo from the file's stat and its sidecar, trusting the sidecar only if it describes this
        very file (a concurrent overwrite can leave it describing the previous version)."""
        meta_path = self.root.joinpath(META_DIR, *validate_key(key))
        try:
            meta = json.loads(meta_path.read_bytes())
        except (OSError, ValueError):
            meta = {}
        if meta.get("version") != _version(st):
            meta = {}
        tag = meta.get("etag")
        if tag is None and etag:
            tag = _md5_file(self.root.joinpath(*validate_key(key)))
        return ObjectInfo(key=key, size=st.st_size, content_type=meta.get("content_type"), etag=tag)

    # --- deletes -------------------------------------------------------------------------------

    async def delete(self, key: str) -> None:
        segments = validate_key(key)
        await _io(lambda: self._delete_sync(segments), key)

    async def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with `prefix` (a string prefix, as on S3); the count."""
        if not prefix:
            raise InvalidInput("Refusing to delete every object (empty prefix)")
        if prefix.startswith("/") or "\\" in prefix or "\x00" in prefix:
            raise InvalidInput("Invalid key prefix")
        directory = prefix.rpartition("/")[0]
        if directory:
            validate_key(directory)
        return await _io(lambda: self._delete_prefix_sync(prefix, directory), prefix)

    def _delete_prefix_sync(self, prefix: str, directory: str) -> int:
        start = self.root.joinpath(*directory.split("/")) if directory else self.root
        keys = []
        for dirpath, dirnames, filenames in os.walk(start):
            relative = Path(dirpath).relative_to(self.root).as_posix()
            if relative == ".":
                dirnames[:] = [d for d in dirnames if d != META_DIR]
                relative = ""
            for name in filenames:
                key = f"{relative}/{name}" if relative else name
                if key.startswith(prefix) and not name.startswith(TEMP_PREFIX):
                    keys.append(key)
        for key in keys:
            self._delete_sync(key.split("/"))
        return len(keys)

    def _delete_sync(self, segments: list[str]) -> None:
        for base in (self.root, self.root / META_DIR):
            path = base.joinpath(*segments)
            with contextlib.suppress(FileNotFoundError, NotADirectoryError, IsADirectoryError):
                path.unlink()
            _prune_empty_dirs(path.parent, stop=base)

    # --- signed URLs ---------------------------------------------------------------------------

    async def presign_get(self, key: str, *, expires_in: int = 900, filename: str | None = None) -> str:
        return self._presign("GET", key, expires_in, filename=filename)

    async def presign_put(
        self, key: str, *, expires_in: int = 900, content_type: str | None = None
    ) -> PresignedUpload:
        """A URL for one PUT. With `content_type`, the client must send exactly that Content-Type."""
        url = self._presign("PUT", key, expires_in, content_type=content_type)
        headers = {"Content-Type": content_type} if content_type else {}
        return PresignedUpload(url=url, method="PUT", headers=headers, expires_in=expires_in)

    def verify(
        self,
        key: str,
        method: str,
        expires: int | str | None,
        signature: str | None,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> bool:
        """True when `signature` was issued by this storage for exactly these values and has not expired."""
        try:
            expires_at = int(expires) if expires is not None else None
        except ValueError:
            return False
        if expires_at is None or not signature or expires_at < time.time():
            return False
        expected = self._sign(method, key, expires_at, content_type, filename)
        return hmac.compare_digest(expected, signature)

    def _presign(
        self,
        method: str,
        key: str,
        expires_in: int,
        *,
        content_type: str | None = None,
        filename: str | None = None,
    ) -> str:
        validate_key(key)
        if not 1 <= expires_in <= MAX_PRESIGN_S:
            raise InvalidInput(f"expires_in must be between 1 and {MAX_PRESIGN_S} seconds")
        expires = int(time.time()) + expires_in
        params: dict[str, str | int] = {"expires": expires, "method": method}
        if filename:
            params["filename"] = filename
        params["signature"] = self._sign(method, key, expires, content_type, filename)
        return f"{self.base_url}/storage/{quote(key, safe='/')}?{urlencode(params)}"

    def _sign(
        self, method: str, key: str, expires: int, content_type: str | None, filename: str | None
    ) -> str:
        # A JSON array is an unambiguous encoding: no choice of values can forge another's message.
        message = json.dumps([method.upper(), key, expires, content_type or "", filename or ""])
        return hmac.new(self._secret, message.encode(), hashlib.sha256).hexdigest()

    # --- health --------------------------------------------------------------------------------

    async def ping(self) -> None:
        def probe() -> None:
            self.root.mkdir(parents=True, exist_ok=True)
            probe_path = self.root / f"{TEMP_PREFIX}ping-{uuid.uuid4().hex}"
            probe_path.write_bytes(b"ok")
            probe_path.unlink()

        try:
            await asyncio.to_thread(probe)
        except OSError as e:
            raise ServiceUnavailable("Storage is unavailable") from e


class _AtomicWriter:
    """One object being written: bytes go to a temporary file that `commit` renames into place."""

    def __init__(self, path: Path, meta_path: Path, key: str) -> None:
        self.path, self.meta_path, self.key = path, meta_path, key
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._size = 0
        self._committed = False
        self._temp, self._file = _create_temp(path.parent)

    def __enter__(self) -> _AtomicWriter:
        return self

    def __exit__(self, *_: object) -> None:
        self.abort()

    def write(self, data: bytes) -> None:
        if self._file.closed:
            raise RuntimeError("write after commit or abort")
        self._file.write(data)
        self._md5.update(data)
        self._size += len(data)

    def commit(self, content_type: str | None) -> ObjectInfo:
        if self._file.closed:
            raise RuntimeError("commit after commit or abort")
        self._file.close()
        os.replace(self._temp, self.path)
        self._committed = True
        etag = self._md5.hexdigest()
        meta = {"content_type": content_type, "etag": etag, "version": _version(self.path.stat())}
        meta_temp, meta_file = _create_temp(self.meta_path.parent)
        try:
            with meta_file:
                meta_file.write(json.dumps(meta).encode())
            os.replace(meta_temp, self.meta_path)
        except BaseException:
            meta_temp.unlink(missing_ok=True)
            raise
        return ObjectInfo(key=self.key, size=self._size, content_type=content_type, etag=etag)

    def abort(self) -> None:
        """Discard an uncommitted write (a no-op after commit)."""
        self._file.close()
        if not self._committed:
            self._temp.unlink(missing_ok=True)


def _create_temp(directory: Path) -> tuple[Path, IO[bytes]]:
    """A new temporary file in `directory`, creating the directory; retried because a concurrent delete
    may prune the (empty) directory between the two steps."""
    for attempt in range(3):
        directory.mkdir(parents=True, exist_ok=True)
        temp = directory / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            return temp, temp.open("xb")
        except FileNotFoundError:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


async def _read_chunks(source: IO[bytes], key: str, chunk_size: int) -> AsyncIterator[bytes]:
    try:
        while chunk := await _io(lambda: source.read(chunk_size), key):
            yield chunk
    finally:
        source.close()


async def _io(function: Callable[[], T], key: str, *, writing: bool = False) -> T:
    """Run blocking file I/O in a thread and translate OSErrors into domain errors.

    Reading, a missing path is NotFound. Writing, a path blocked by another object (`a/b` when `a` is an
    object, or `a` when `a/b` is) is Conflict. Anything else is ServiceUnavailable.
    """
    try:
        return await asyncio.to_thread(function)
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError, FileExistsError) as e:
        if not writing:
            raise NotFound(f"Storage object not found (key={key})") from e
        if isinstance(e, FileNotFoundError):
            raise ServiceUnavailable("Storage write was interrupted, please retry") from e
        raise Conflict(f"Storage key conflicts with an existing object (key={key})") from e
    except OSError as e:
        raise ServiceUnavailable("Storage is temporarily unavailable, please retry") from e


def _version(st: os.stat_result) -> list[int]:
    """What identifies one written version of a file: each commit renames a new inode into place."""
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def _md5_file(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _prune_empty_dirs(directory: Path, *, stop: Path) -> None:
    """Remove now-empty parents up to (not including) `stop`, so deleted trees do not linger."""
    while directory != stop and stop in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent
