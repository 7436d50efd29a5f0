"""S3Storage against moto: the whole ObjectStorage port, SSE on every write, and presigned URLs used by a
real HTTP client against a moto server."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import boto3
import httpx
import pytest
from boto3.s3.transfer import TransferConfig
from botocore.config import Config

from stratus.adapters.aws import clients
from stratus.adapters.aws import s3 as s3_module
from stratus.adapters.aws.s3 import S3Storage, content_disposition
from stratus.errors import DependencyFailed, InvalidInput, NotFound, ServiceUnavailable
from stratus.ports.storage import ObjectInfo
from stratus.settings import Settings

REGION = "us-east-1"
BUCKET = "stratus-artifacts"


@pytest.fixture
def s3(aws: None) -> Any:
    # The production client: SigV4 presigning and virtual-hosted addressing, as in Lambda.
    client = clients.s3(Settings(aws_region=REGION))
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
def storage(s3: Any) -> S3Storage:
    return S3Storage(s3, BUCKET)


def sse(s3: Any, key: str) -> str | None:
    value = s3.head_object(Bucket=BUCKET, Key=key).get("ServerSideEncryption")
    return None if value is None else str(value)


async def test_put_get_head_delete(storage: S3Storage, s3: Any) -> None:
    info = await storage.put_bytes("datasets/u1/a.csv", b"a,b\n1,2\n", content_type="text/csv")
    assert info == ObjectInfo("datasets/u1/a.csv", 8, "text/csv", info.etag)
    assert info.etag
    assert not info.etag.startswith('"')
    assert sse(s3, "datasets/u1/a.csv") == "AES256"

    assert await storage.get_bytes("datasets/u1/a.csv") == b"a,b\n1,2\n"
    head = await storage.head("datasets/u1/a.csv")
    assert head == ObjectInfo("datasets/u1/a.csv", 8, "text/csv", info.etag)

    await storage.delete("datasets/u1/a.csv")
    assert await storage.head("datasets/u1/a.csv") is None
    await storage.delete("datasets/u1/a.csv")  # idempotent
    with pytest.raises(NotFound):
        await storage.get_bytes("datasets/u1/a.csv")


async def test_put_file_and_download_to(storage: S3Storage, s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "model.bin"
    source.write_bytes(os.urandom(300_000))

    info = await storage.put_file("models/m1/model.bin", source, content_type="application/octet-stream")
    assert (info.size, info.content_type) == (300_000, "application/octet-stream")
    assert sse(s3, "models/m1/model.bin") == "AES256"

    target = tmp_path / "copy.bin"
    await storage.download_to("models/m1/model.bin", target)
    assert target.read_bytes() == source.read_bytes()

    with pytest.raises(NotFound):
        await storage.download_to("models/m1/missing.bin", tmp_path / "missing.bin")
    assert not (tmp_path / "missing.bin").exists()


async def test_put_file_multipart_is_encrypted(
    storage: S3Storage, s3: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mib = 1024 * 1024
    monkeypatch.setattr(
        s3_module, "TRANSFER_CONFIG", TransferConfig(multipart_threshold=5 * mib, multipart_chunksize=5 * mib)
    )
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(6 * mib))

    await storage.put_file("big.bin", source)

    head = s3.head_object(Bucket=BUCKET, Key="big.bin")
    assert head["ServerSideEncryption"] == "AES256"
    assert head["ETag"].strip('"').endswith("-2")  # really went up in two parts
    assert await storage.get_bytes("big.bin") == source.read_bytes()


async def test_put_file_to_a_missing_bucket_is_not_a_404(s3: Any, tmp_path: Path) -> None:
    source = tmp_path / "f.txt"
    source.write_text("x")
    with pytest.raises(DependencyFailed) as caught:
        await S3Storage(s3, "no-such-bucket").put_file("k", source)
    assert caught.value.details == {"aws_error": "NoSuchBucket"}
    assert caught.value.__cause__ is not None


async def test_iter_chunks_streams_in_pieces(storage: S3Storage) -> None:
    data = os.urandom(10_000)
    await storage.put_bytes("blob", data)

    chunks = [chunk async for chunk in storage.iter_chunks("blob", chunk_size=4096)]

    assert [len(c) for c in chunks] == [4096, 4096, 1808]
    assert b"".join(chunks) == data
    with pytest.raises(NotFound):
        [chunk async for chunk in storage.iter_chunks("missing")]


async def test_delete_prefix_deletes_in_batches(storage: S3Storage, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_module, "DELETE_BATCH", 3)  # 7 objects: batches of 3, 3, 1
    for i in range(7):
        await storage.put_bytes(f"users/u1/files/{i}", b"x")
    await storage.put_bytes("users/u10/files/keep", b"x")
    await storage.put_bytes("users/u2/files/keep", b"x")

    assert await storage.delete_prefix("users/u1/") == 7

    assert await storage.head("users/u1/files/0") is None
    assert await storage.head("users/u10/files/keep") is not None
    assert await storage.head("users/u2/files/keep") is not None
    assert await storage.delete_prefix("users/u1/") == 0
    with pytest.raises(InvalidInput):
        await storage.delete_prefix("")


async def test_ping(storage: S3Storage, s3: Any) -> None:
    await storage.ping()
    with pytest.raises(ServiceUnavailable):
        await S3Storage(s3, "no-such-bucket").ping()


async def test_presign_get_sets_the_download_name(storage: S3Storage) -> None:
    url = await storage.presign_get("files/f1", expires_in=60, filename="résumé final.pdf")
    query = parse_qs(urlsplit(url).query)
    assert urlsplit(url).netloc == f"{BUCKET}.s3.amazonaws.com"
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == ["60"]
    assert query["response-content-disposition"] == [
        "attachment; filename=\"r_sum_ final.pdf\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20final.pdf"
    ]
    assert "response-content-disposition" not in parse_qs(urlsplit(await storage.presign_get("f")).query)
    with pytest.raises(InvalidInput):
        await storage.presign_get("f", expires_in=8 * 24 * 3600)


def test_content_disposition_cannot_be_used_to_inject() -> None:
    value = content_disposition('../x"; evil=1\r\n.txt')
    assert "\r" not in value
    assert "\n" not in value
    assert value.startswith('attachment; filename="x__ evil=1__.txt"; ')
    assert unquote(value.split("UTF-8''", 1)[1]) == 'x"; evil=1\r\n.txt'


# --- presigned URLs over real HTTP -------------------------------------------------------------


@pytest.fixture
def served(moto_server: str) -> tuple[Any, S3Storage]:
    # Path-style: the server is an IP address, not a wildcard DNS name.
    client = boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=moto_server,
        config=Config(signature_version="s3v4", s3={"addressing_style": "path"}),
    )
    bucket = f"served-{os.urandom(4).hex()}"
    client.create_bucket(Bucket=bucket)
    return client, S3Storage(client, bucket)


async def test_presigned_put_then_get_over_http(served: tuple[Any, S3Storage]) -> None:
    client, storage = served
    upload = await storage.presign_put("uploads/u1/data.csv", expires_in=300, content_type="text/csv")
    assert upload.method == "PUT"
    assert upload.expires_in == 300
    assert upload.headers == {"Content-Type": "text/csv", "x-amz-server-side-encryption": "AES256"}
    signed = parse_qs(urlsplit(upload.url).query)["X-Amz-SignedHeaders"][0].split(";")
    assert {"content-type", "x-amz-server-side-encryption"} <= set(signed)

    async with httpx.AsyncClient() as http:
        put = await http.put(upload.url, content=b"a,b\n1,2\n", headers=upload.headers)
        assert put.status_code == 200, put.text

        head = client.head_object(Bucket=storage.bucket, Key="uploads/u1/data.csv")
        assert head["ServerSideEncryption"] == "AES256"
        assert head["ContentType"] == "text/csv"
        assert await storage.head("uploads/u1/data.csv") == ObjectInfo(
            "uploads/u1/data.csv", 8, "text/csv", head["ETag"].strip('"')
        )

        url = await storage.presign_get("uploads/u1/data.csv", filename="data.csv")
        get = await http.get(url)
        assert get.status_code == 200
        assert get.content == b"a,b\n1,2\n"
        assert get.headers["content-disposition"].startswith('attachment; filename="data.csv"')


async def test_presign_put_without_content_type(served: tuple[Any, S3Storage]) -> None:
    _, storage = served
    upload = await storage.presign_put("raw.bin")
    assert upload.headers == {"x-amz-server-side-encryption": "AES256"}
    async with httpx.AsyncClient() as http:
        assert (await http.put(upload.url, content=b"\x00\x01", headers=upload.headers)).status_code == 200
    assert await storage.get_bytes("raw.bin") == b"\x00\x01"
