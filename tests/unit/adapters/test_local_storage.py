"""LocalDirectoryStorage and its signed-URL router: S3's behaviour on a directory."""

from __future__ import annotations

import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fastapi import FastAPI

from stratus.adapters.local import storage as storage_module
from stratus.adapters.local.storage import LocalDirectoryStorage
from stratus.api.errors import install_error_handlers
from stratus.api.routers import storage_local
from stratus.errors import Conflict, InvalidInput, NotFound, ServiceUnavailable

BASE_URL = "http://testserver"
SECRET = "unit-test-signing-secret"


@pytest.fixture
def storage(tmp_path: Path) -> LocalDirectoryStorage:
    return LocalDirectoryStorage(tmp_path / "objects", base_url=BASE_URL + "/", signing_secret=SECRET)


def files_under(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


# --- objects ---------------------------------------------------------------------------------------


async def test_put_get_head_round_trip(storage: LocalDirectoryStorage) -> None:
    data = b"a,b\n1,2\n"
    info = await storage.put_bytes("u1/d1/data.csv", data, content_type="text/csv")

    assert (info.key, info.size, info.content_type) == ("u1/d1/data.csv", len(data), "text/csv")
    assert info.etag == md5(data)
    assert await storage.get_bytes("u1/d1/data.csv") == data
    assert await storage.head("u1/d1/data.csv") == info
    # THEN the object is a plain file, its metadata in the .meta mirror, and no temporary file is left
    assert files_under(storage.root) == [".meta/u1/d1/data.csv", "u1/d1/data.csv"]


async def test_overwrite_replaces_bytes_and_metadata(storage: LocalDirectoryStorage) -> None:
    await storage.put_bytes("k", b"old", content_type="text/plain")
    await storage.put_bytes("k", b"newer")
    head = await storage.head("k")
    assert head is not None
    assert (head.size, head.content_type) == (5, None)
    assert head.etag == md5(b"newer")


async def test_put_file_download_and_chunks(storage: LocalDirectoryStorage, tmp_path: Path) -> None:
    source = tmp_path / "source.bin"
    source.write_bytes(bytes(range(256)) * 10)
    info = await storage.put_file("big/file.bin", source, content_type="application/octet-stream")
    assert info.size == 2560
    assert info.etag == md5(source.read_bytes())

    target = tmp_path / "out.bin"
    await storage.download_to("big/file.bin", target)
    chunks = [chunk async for chunk in storage.iter_chunks("big/file.bin", chunk_size=1000)]

    assert target.read_bytes() == source.read_bytes()
    assert [len(c) for c in chunks] == [1000, 1000, 560]


async def test_missing_objects(storage: LocalDirectoryStorage, tmp_path: Path) -> None:
    await storage.put_bytes("dir/present", b"x")
    for key in ("absent", "dir", "dir/present/below"):
        assert await storage.head(key) is None
        with pytest.raises(NotFound):
            await storage.get_bytes(key)
        with pytest.raises(NotFound):
            await storage.download_to(key, tmp_path / "out")
        with pytest.raises(NotFound):
            _ = [c async for c in storage.iter_chunks(key)]
    assert not (tmp_path / "out").exists()  # a failed download creates nothing


@pytest.mark.parametrize(
    "key",
    [
        "",
        "/etc/passwd",
        "..",
        "a/../b",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
        "a\x00b",
        ".meta/x",
        "a/.~tmp-1",
        "k" * 1025,
    ],
)
async def test_unsafe_keys_are_refused(storage: LocalDirectoryStorage, key: str) -> None:
    with pytest.raises(InvalidInput):
        await storage.put_bytes(key, b"x")
    with pytest.raises(InvalidInput):
        await storage.get_bytes(key)
    with pytest.raises(InvalidInput):
        await storage.presign_get(key)
    assert not storage.root.exists() or files_under(storage.root) == []


async def test_dots_inside_a_name_are_fine(storage: LocalDirectoryStorage) -> None:
    await storage.put_bytes("u/report..v2.csv", b"x")
    assert await storage.get_bytes("u/report..v2.csv") == b"x"


async def test_a_key_blocked_by_another_object_is_a_conflict(storage: LocalDirectoryStorage) -> None:
    await storage.put_bytes("a", b"file")
    await storage.put_bytes("b/c", b"nested")
    with pytest.raises(Conflict):
        await storage.put_bytes("a/b", b"x")
    with pytest.raises(Conflict):
        await storage.put_bytes("b", b"x")
    assert files_under(storage.root) == [".meta/a", ".meta/b/c", "a", "b/c"]


async def test_a_failed_stream_stores_nothing(storage: LocalDirectoryStorage) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"x" * (storage_module.CHUNK + 1)
        raise RuntimeError("client went away")

    with pytest.raises(RuntimeError):
        await storage.put_stream("k", broken())
    assert await storage.head("k") is None
    assert files_under(storage.root) == []


async def test_a_stale_sidecar_is_not_trusted(storage: LocalDirectoryStorage) -> None:
    # GIVEN the file changed behind the sidecar's back
    await storage.put_bytes("k", b"one", content_type="text/plain")
    (storage.root / "k").write_bytes(b"second version")

    head = await storage.head("k")

    assert head is not None
    assert head.content_type is None
    assert (head.size, head.etag) == (14, md5(b"second version"))


async def test_delete_is_idempotent_and_prunes_empty_directories(storage: LocalDirectoryStorage) -> None:
    await storage.put_bytes("u/d/x", b"x")
    await storage.delete("u/d/x")
    await storage.delete("u/d/x")
    await storage.delete("never/existed")
    assert list(storage.root.iterdir()) == [storage.root / ".meta"]
    assert list((storage.root / ".meta").iterdir()) == []
    # AND the key is free again for an object of that name
    await storage.put_bytes("u", b"now a file")


async def test_delete_prefix_is_a_string_prefix(storage: LocalDirectoryStorage) -> None:
    for key in ("u1/a", "u1/b/c", "u10/a", "u2/a"):
        await storage.put_bytes(key, b"x")

    assert await storage.delete_prefix("u1/") == 2
    assert await storage.delete_prefix("u1") == 1  # u10/a, as S3 would
    assert await storage.delete_prefix("nothing/") == 0
    assert files_under(storage.root) == [".meta/u2/a", "u2/a"]


@pytest.mark.parametrize("prefix", ["", "/", "../", "a/../", ".meta/"])
async def test_delete_prefix_refuses_unsafe_prefixes(storage: LocalDirectoryStorage, prefix: str) -> None:
    with pytest.raises(InvalidInput):
        await storage.delete_prefix(prefix)


async def test_ping(storage: LocalDirectoryStorage, tmp_path: Path) -> None:
    await storage.ping()
    assert storage.root.is_dir()
    assert list(storage.root.iterdir()) == []

    blocked = tmp_path / "a-file"
    blocked.write_bytes(b"")
    with pytest.raises(ServiceUnavailable):
        await LocalDirectoryStorage(blocked, base_url=BASE_URL, signing_secret=SECRET).ping()


# --- signatures --------------------------------------------------------------------------------------


async def test_presigned_get_url_and_verify(storage: LocalDirectoryStorage) -> None:
    url = await storage.presign_get("u/my file.csv", expires_in=60, filename="report.csv")

    assert url.startswith(f"{BASE_URL}/storage/u/my%20file.csv?")
    q = query(url)
    assert q["method"] == "GET"
    assert q["filename"] == "report.csv"
    assert abs(int(q["expires"]) - (time.time() + 60)) < 5

    def check(**changes: str) -> bool:
        values = {"key": "u/my file.csv", "method": "GET", **q, **changes}
        return storage.verify(
            values["key"],
            values["method"],
            values["expires"],
            values["signature"],
            filename=values.get("filename"),
        )

    assert check()
    assert not check(key="u/other.csv")
    assert not check(method="PUT")
    assert not check(expires=str(int(q["expires"]) + 1))
    assert not check(filename="evil.exe")
    assert not check(signature="0" * 64)
    assert not check(expires="soon")
    other = LocalDirectoryStorage(storage.root, base_url=BASE_URL, signing_secret="another-secret")
    assert not other.verify("u/my file.csv", "GET", q["expires"], q["signature"], filename="report.csv")


async def test_an_expired_signature_is_refused(
    storage: LocalDirectoryStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    q = query(await storage.presign_get("k", expires_in=1))
    real = time.time
    monkeypatch.setattr(storage_module, "time", SimpleNamespace(time=lambda: real() + 5))
    assert not storage.verify("k", "GET", q["expires"], q["signature"])


async def test_presigned_put_binds_the_content_type(storage: LocalDirectoryStorage) -> None:
    upload = await storage.presign_put("k", expires_in=120, content_type="text/csv")
    assert (upload.method, upload.headers, upload.expires_in) == ("PUT", {"Content-Type": "text/csv"}, 120)
    q = query(upload.url)
    assert storage.verify("k", "PUT", q["expires"], q["signature"], content_type="text/csv")
    assert not storage.verify("k", "PUT", q["expires"], q["signature"], content_type="text/html")
    assert not storage.verify("k", "PUT", q["expires"], q["signature"])


@pytest.mark.parametrize("expires_in", [0, storage_module.MAX_PRESIGN_S + 1])
async def test_presign_expiry_bounds(storage: LocalDirectoryStorage, expires_in: int) -> None:
    with pytest.raises(InvalidInput):
        await storage.presign_get("k", expires_in=expires_in)


# --- the signed-URL router ---------------------------------------------------------------------------


@pytest.fixture
async def http(storage: LocalDirectoryStorage) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    install_error_handlers(app)
    app.include_router(storage_local.build_router(storage, max_bytes=1024))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=BASE_URL) as client:
        yield client


async def test_get_streams_the_object_with_its_headers(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    await storage.put_bytes("u/data.csv", b"a,b\n", content_type="text/csv")
    url = await storage.presign_get("u/data.csv", filename="résumé.csv")

    response = await http.get(url)

    assert response.status_code == 200
    assert response.content == b"a,b\n"
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-length"] == "4"
    assert response.headers["content-disposition"] == (
        "attachment; filename=\"r_sum_.csv\"; filename*=UTF-8''r%C3%A9sum%C3%A9.csv"
    )


async def test_a_bad_signature_is_403_in_the_error_shape(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    await storage.put_bytes("k", b"secret")
    url = await storage.presign_get("k")

    for bad in (
        url.replace("signature=", "signature=0"),
        f"{BASE_URL}/storage/k",
        url.replace("/k?", "/k2?"),
    ):
        response = await http.get(bad)
        assert response.status_code == 403
        body = response.json()
        assert body["code"] == "INSUFFICIENT_PERMISSIONS"
        assert body["message"] == "Invalid or expired signature"
    # AND a GET URL does not authorise a PUT
    assert (await http.put(url, content=b"overwrite")).status_code == 403
    assert await storage.get_bytes("k") == b"secret"


async def test_a_signed_url_for_a_missing_object_is_404(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    response = await http.get(await storage.presign_get("gone"))
    assert response.status_code == 404
    assert response.json()["code"] == "RESOURCE_NOT_FOUND"


async def test_put_stores_the_body(storage: LocalDirectoryStorage, http: httpx.AsyncClient) -> None:
    upload = await storage.presign_put("u/up.csv", content_type="text/csv")

    response = await http.put(upload.url, content=b"x,y\n", headers=upload.headers)

    assert response.status_code == 200, response.text
    assert response.json() == {
        "key": "u/up.csv",
        "size": 4,
        "etag": md5(b"x,y\n"),
    }
    head = await storage.head("u/up.csv")
    assert head is not None
    assert head.content_type == "text/csv"


async def test_put_without_a_signed_content_type_accepts_any(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    upload = await storage.presign_put("k")
    response = await http.put(upload.url, content=b"{}", headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert (await storage.head("k")).content_type == "application/json"  # type: ignore[union-attr]


async def test_put_with_another_content_type_than_signed_is_403(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    upload = await storage.presign_put("k", content_type="text/csv")
    for headers in ({"Content-Type": "text/html"}, {}):
        assert (await http.put(upload.url, content=b"x", headers=headers)).status_code == 403
    assert await storage.head("k") is None


async def test_put_over_the_limit_is_413_and_stores_nothing(
    storage: LocalDirectoryStorage, http: httpx.AsyncClient
) -> None:
    upload = await storage.presign_put("k")

    declared = await http.put(upload.url, content=b"x" * 1025)

    async def unsized() -> AsyncIterator[bytes]:  # chunked: no Content-Length to refuse up front
        for _ in range(3):
            yield b"x" * 512

    streamed = await http.put(upload.url, content=unsized())

    assert declared.status_code == streamed.status_code == 413
    assert streamed.json()["code"] == "PAYLOAD_TOO_LARGE"
    assert await storage.head("k") is None
    assert files_under(storage.root) == []
