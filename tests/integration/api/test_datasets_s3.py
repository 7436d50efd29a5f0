"""The dataset and file flows with the S3 adapter (under moto) in place of the local directory."""

from __future__ import annotations

import io
import zipfile
from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest
from fastapi import FastAPI

from stratus.adapters.aws import clients
from stratus.adapters.aws.s3 import S3Storage
from stratus.api.app import create_app
from stratus.composition import Container, build_container
from stratus.local.runtime import LocalPorts
from stratus.settings import Settings
from tests.integration.api.accounts import Account, register

BUCKET = "stratus-artifacts-test"
CSV = b"sepal,petal,species\n5.1,1.4,setosa\n7.0,4.7,versicolor\n6.3,6.0,virginica\n"
LINES = b'{"text": "good", "label": 1}\n{"text": "bad", "label": 0}\n'
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


@pytest.fixture
def s3(mocked_aws: None) -> object:
    # The production client (SigV4 presigning, retries, timeouts), created fresh inside the mock.
    client = clients.s3(Settings())
    client.create_bucket(Bucket=BUCKET)
    return client


@pytest.fixture
async def s3_client(
    settings: Settings, ports: LocalPorts, s3: object
) -> AsyncIterator[tuple[httpx.AsyncClient, object]]:
    container: Container = build_container(settings, replace(ports, storage=S3Storage(s3, BUCKET)))
    await container.bootstrap()
    app: FastAPI = create_app(container)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        ) as http:
            yield http, s3
    finally:
        await container.database.client.drop_database(settings.mongodb_db)
        await container.close()


def _keys(s3: object) -> list[str]:
    listing = s3.list_objects_v2(Bucket=BUCKET)  # type: ignore[attr-defined]
    return [item["Key"] for item in listing.get("Contents", [])]


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        for name in ("cats/1.png", "dogs/1.png", "dogs/2.png"):
            z.writestr(name, PNG)
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("filename", "data", "rows"), [("iris.csv", CSV, 3), ("reviews.jsonl", LINES, 2), ("pets.zip", _zip(), 3)]
)
async def test_upload_list_get_rows_delete_on_s3(
    s3_client: tuple[httpx.AsyncClient, object], filename: str, data: bytes, rows: int
) -> None:
    client, s3 = s3_client
    account: Account = await register(client)
    created = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": (filename, data)}
    )
    assert created.status_code == 201, created.text
    dataset = created.json()
    assert dataset["status"] == "ready" and dataset["row_count"] == rows
    # Stored under the user's prefix, encrypted at rest.
    [key] = _keys(s3)
    assert key.startswith(f"users/{account.user_id}/datasets/{dataset['_id']}/")
    assert s3.head_object(Bucket=BUCKET, Key=key)["ServerSideEncryption"] == "AES256"  # type: ignore[attr-defined]

    listed = await client.get("/api/datasets", headers=account.headers)
    assert [d["_id"] for d in listed.json()] == [dataset["_id"]]
    assert (await client.get(f"/api/datasets/{dataset['_id']}", headers=account.headers)).status_code == 200
    page = await client.get(f"/api/datasets/{dataset['_id']}/rows?limit=2", headers=account.headers)
    assert len(page.json()["rows"]) == 2

    assert (
        await client.delete(f"/api/datasets/{dataset['_id']}", headers=account.headers)
    ).status_code == 204
    assert _keys(s3) == []


async def test_bad_upload_leaves_no_object_in_the_bucket(s3_client: tuple[httpx.AsyncClient, object]) -> None:
    client, s3 = s3_client
    account = await register(client)
    response = await client.post(
        "/api/datasets/upload", headers=account.headers, files={"file": ("r.csv", b"a,b\n1,2\n3\n")}
    )
    assert response.status_code == 400
    assert _keys(s3) == []


async def test_file_download_url_is_a_presigned_s3_url(s3_client: tuple[httpx.AsyncClient, object]) -> None:
    client, _s3 = s3_client
    account = await register(client)
    uploaded = await client.post(
        "/api/files/upload", headers=account.headers, files={"file": ("notes.txt", b"hello")}
    )
    assert uploaded.status_code == 201
    url = uploaded.json()["url"]
    assert BUCKET in url and "X-Amz-Signature=" in url and "X-Amz-Expires=900" in url
