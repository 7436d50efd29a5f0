"""Datasets end to end on the local adapters: upload, list, get, rows, delete, and every bad input."""

from __future__ import annotations

import io
import json
import random
import zipfile
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from bson import ObjectId

from stratus.composition import Container
from stratus.local.runtime import LocalPorts
from tests.integration.api.accounts import Account

SALES_CSV = (
    b"date,product,sales,region\n"
    b"2025-01-01,Product A,1000,North\n"
    b"2025-01-02,Product B,1500,South\n"
    b"2025-01-03,Product C,1200.5,East\n"
)
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


def _zip(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buffer.getvalue()


async def _upload(
    client: httpx.AsyncClient,
    account: Account,
    filename: str,
    data: bytes,
    path: str = "/api/datasets/upload",
    **form: str,
) -> httpx.Response:
    return await client.post(path, headers=account.headers, files={"file": (filename, data)}, data=form)


def _stored_objects(ports: LocalPorts) -> list[Path]:
    root = ports.storage.root
    return [p for p in root.rglob("*") if p.is_file() and ".meta" not in p.parts] if root.exists() else []


async def test_csv_upload_list_get_rows_delete(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    # WHEN seed 003's curl example uploads a CSV
    created = await _upload(client, alice, "sales_data.csv", SALES_CSV)
    # THEN it is parsed at once, with seed 003's fields and seed 001's metadata
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "ready" and body["name"] == body["file_name"] == "sales_data.csv"
    assert (body["row_count"], body["column_count"], body["file_size"]) == (3, 4, len(SALES_CSV))
    assert body["preview_data"]["headers"] == ["date", "product", "sales", "region"]
    assert body["preview_data"]["rows"][0][:2] == ["2025-01-01", "Product A"]
    assert body["metadata"]["rows"] == 3 and body["metadata"]["columns"] == 4
    assert body["column_types"] == {
        "date": "datetime",
        "product": "string",
        "sales": "float",
        "region": "string",
    }
    assert body["uploaded_at"].endswith("Z")
    dataset_id = body["_id"]
    me = (await client.get("/api/auth/me", headers=alice.headers)).json()
    assert me["datasets_count"] == 1

    listed = await client.get("/api/datasets?limit=10&offset=0", headers=alice.headers)
    assert [d["_id"] for d in listed.json()] == [dataset_id] and listed.headers["X-Total-Count"] == "1"
    assert (await client.get(f"/api/datasets/{dataset_id}", headers=alice.headers)).json()[
        "_id"
    ] == dataset_id

    rows = await client.get(f"/api/datasets/{dataset_id}/rows?offset=1&limit=5", headers=alice.headers)
    assert rows.status_code == 200
    assert [r["product"] for r in rows.json()["rows"]] == ["Product B", "Product C"]
    assert rows.json()["rows"][1]["sales"] == 1200.5  # typed by the inferred column type

    assert len(_stored_objects(ports)) == 1
    deleted = await client.delete(f"/api/datasets/{dataset_id}", headers=alice.headers)
    assert deleted.status_code == 204
    assert _stored_objects(ports) == []
    assert (await client.get(f"/api/datasets/{dataset_id}", headers=alice.headers)).status_code == 404
    assert (await client.get("/api/auth/me", headers=alice.headers)).json()["datasets_count"] == 0


async def test_seed_001_upload_and_paged_list(client: httpx.AsyncClient, alice: Account) -> None:
    for i in range(3):
        response = await _upload(
            client, alice, f"d{i}.csv", SALES_CSV, path="/datasets/upload",
            name=f"set {i}", description="sales", dataset_type="regression",
        )  # fmt: skip
        assert response.status_code == 201
        assert response.json()["dataset_type"] == "regression"
        assert response.json()["metadata"]["target"] == "region"
    page = await client.get("/datasets?page=2&limit=2&sort_by=name&order=asc", headers=alice.headers)
    body = page.json()
    assert (body["total"], body["page"], body["limit"]) == (3, 2, 2)
    assert [d["name"] for d in body["datasets"]] == ["set 2"]


async def test_json_lines_and_json_array(client: httpx.AsyncClient, alice: Account) -> None:
    lines = b'{"text": "great film", "label": "pos"}\n{"text": "dull", "label": "neg"}\n'
    jsonl = await _upload(client, alice, "reviews.jsonl", lines, dataset_type="classification")
    assert jsonl.status_code == 201, jsonl.text
    assert jsonl.json()["row_count"] == 2 and jsonl.json()["metadata"]["target"] == "label"
    array = await _upload(client, alice, "r.json", json.dumps([{"a": 1}, {"a": 2}, {"a": 3}]).encode())
    assert array.status_code == 201 and array.json()["row_count"] == 3


async def test_zip_of_images_per_class(client: httpx.AsyncClient, alice: Account) -> None:
    archive = _zip({"cats/1.png": PNG, "cats/2.png": PNG, "dogs/1.png": PNG})
    response = await _upload(client, alice, "pets.zip", archive, dataset_type="image")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["row_count"] == 3 and body["metadata"]["classes"] == {"cats": 2, "dogs": 1}
    rows = (await client.get(f"/api/datasets/{body['_id']}/rows", headers=alice.headers)).json()["rows"]
    assert {r["label"] for r in rows} == {"cats", "dogs"}


@pytest.mark.parametrize(
    ("filename", "data", "status", "message"),
    [
        ("empty.csv", b"", 400, "Dataset file is empty"),
        ("ragged.csv", b"a,b,c\n1,2,3\n4,5\n", 400, "File must be a valid CSV file"),
        ("latin1.csv", "name\nJos\xe9\n".encode("latin-1"), 400, "File must be a valid CSV file"),
        ("photo.csv", PNG, 400, "File must be a valid CSV file"),
        ("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj\n" + b"\x00" * 100, 415, "Unsupported"),
        ("slip.zip", _zip({"../../etc/passwd": b"x"}), 400, ""),
        ("abs.zip", _zip({"/etc/passwd": b"x"}), 400, ""),
        ("bomb.zip", _zip({"zeros.csv": b"0" * (30 * 1024 * 1024)}), 400, ""),
    ],
)
async def test_bad_uploads_are_refused_and_leave_nothing(
    client: httpx.AsyncClient, alice: Account, ports: LocalPorts,
    filename: str, data: bytes, status: int, message: str,
) -> None:  # fmt: skip
    response = await _upload(client, alice, filename, data)
    assert response.status_code == status, response.text
    assert message in response.json()["detail"]
    # Nothing half-written: no object, no record, no count.
    assert _stored_objects(ports) == []
    assert (await client.get("/api/datasets", headers=alice.headers)).json() == []
    assert (await client.get("/api/auth/me", headers=alice.headers)).json()["datasets_count"] == 0


async def test_ragged_csv_error_names_the_line(client: httpx.AsyncClient, alice: Account) -> None:
    response = await _upload(client, alice, "r.csv", b"a,b\n1,2\n3,4\n5\n")
    assert "line 4" in response.json()["detail"]


async def test_oversized_upload_is_413(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    container.settings.max_upload_bytes = 2048
    response = await _upload(client, alice, "big.csv", b"a,b\n" + b"1,2\n" * 2000)
    assert response.status_code == 413


async def test_missing_file_and_wrong_content_type(client: httpx.AsyncClient, alice: Account) -> None:
    no_file = await client.post("/api/datasets/upload", headers=alice.headers, data={"name": "x"})
    assert no_file.status_code == 422 and no_file.json()["details"][0]["field"] == "file"
    as_json = await client.post("/api/datasets/upload", headers=alice.headers, json={"file": "a,b"})
    assert as_json.status_code == 415


async def test_large_upload_is_processed_by_the_worker(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    # GIVEN uploads above the inline threshold go through the queue
    container.datasets.policy = replace(container.datasets.policy, inline_parse_bytes=10)
    processed: list[dict[str, object]] = []

    async def on_processed(envelope: dict[str, object]) -> None:
        processed.append(envelope)

    ports.bus.subscribe({"detail-type": ["dataset.processed"]}, on_processed)
    await ports.queue.start(container.messages.handle)
    try:
        response = await _upload(client, alice, "sales.csv", SALES_CSV)
        assert response.status_code == 201 and response.json()["status"] == "processing"
        # A file whose first lines look fine, so only the full parse finds the ragged row.
        bad_rows = b"a,b\n" + b"1,2\n" * 5000 + b"3\n"
        bad = await _upload(client, alice, "bad.csv", bad_rows)
        assert bad.status_code == 201 and bad.json()["status"] == "processing"
        await ports.queue.join()
        await ports.bus.drain()
    finally:
        await ports.queue.stop()
    good = (await client.get(f"/api/datasets/{response.json()['_id']}", headers=alice.headers)).json()
    assert good["status"] == "ready" and good["row_count"] == 3
    failed = (await client.get(f"/api/datasets/{bad.json()['_id']}", headers=alice.headers)).json()
    assert failed["status"] == "failed" and "line 5002" in failed["error"]
    assert {e["detail"]["status"] for e in processed} == {"ready", "failed"}  # type: ignore[index]


def _report_bomb() -> bytes:
    """The archive from the reliability report: 500 members x 1,000,000 bytes of repeated CSV rows."""
    member = (b"a,b\n" + b"1,2\n" * 250_000)[:1_000_000]
    return _zip({f"part{i:03}.csv": member for i in range(500)})


def _varied_csv(rows: int, seed: int) -> bytes:
    """CSV that compresses about as much as real data does (a few times)."""
    rng = random.Random(seed)
    return ("id,score\n" + "".join(f"{i},{rng.random():.6f}\n" for i in range(rows))).encode()


async def _nothing_stored(client: httpx.AsyncClient, account: Account, ports: LocalPorts) -> None:
    assert _stored_objects(ports) == []
    assert (await client.get("/api/datasets", headers=account.headers)).json() == []
    assert (await client.get("/api/auth/me", headers=account.headers)).json()["datasets_count"] == 0


async def test_zip_of_many_members_just_under_1_mib_is_refused_as_a_bomb(
    client: httpx.AsyncClient, alice: Account, ports: LocalPorts
) -> None:
    # GIVEN a ~0.5 MB upload (far under the inline size) that expands to 500 MB
    archive = _report_bomb()
    assert len(archive) < 600 * 1024
    # WHEN it is uploaded THEN it is refused from its central directory, with the reason
    response = await _upload(client, alice, "report.zip", archive)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "INVALID_ZIP"
    assert "it expands" in body["detail"] and "(500000000 bytes from" in body["detail"]
    assert "at most 100 is allowed (a decompression bomb?)" in body["detail"]
    await _nothing_stored(client, alice, ports)


async def test_zip_goes_to_the_worker_by_its_expanded_size(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    # GIVEN a legitimate multi-file ZIP smaller than the inline size that expands to more than it
    archive = _zip({f"part{i}.csv": _varied_csv(3000, i) for i in range(3)})
    expanded = sum(i.file_size for i in zipfile.ZipFile(io.BytesIO(archive)).infolist())
    container.datasets.policy = replace(container.datasets.policy, inline_parse_bytes=expanded - 1)
    assert len(archive) <= container.datasets.policy.inline_parse_bytes
    # WHEN it is uploaded THEN it is parsed by the worker, not in the request
    response = await _upload(client, alice, "parts.zip", archive)
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "processing"
    await ports.queue.start(container.messages.handle)
    try:
        await ports.queue.join()
    finally:
        await ports.queue.stop()
    done = (await client.get(f"/api/datasets/{response.json()['_id']}", headers=alice.headers)).json()
    assert (done["status"], done["row_count"]) == ("ready", 9000)
    # AND the same archive is parsed in the request when the inline size covers what it expands to
    container.datasets.policy = replace(container.datasets.policy, inline_parse_bytes=expanded)
    inline = await _upload(client, alice, "parts.zip", archive)
    assert inline.status_code == 201, inline.text
    assert (inline.json()["status"], inline.json()["row_count"]) == ("ready", 9000)


async def test_row_limit_is_413_and_leaves_nothing(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    policy = container.datasets.policy
    container.datasets.policy = replace(policy, limits=replace(policy.limits, max_rows=2))
    response = await _upload(client, alice, "sales.csv", SALES_CSV)
    assert response.status_code == 413, response.text
    assert response.json()["code"] == "TOO_MANY_ROWS"
    assert response.json()["detail"] == "The dataset has more than 2 rows; at most 2 are allowed"
    await _nothing_stored(client, alice, ports)


async def test_parse_time_limits(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    # GIVEN an inline time budget that any parse outruns (0 s has passed by the first check)
    policy = container.datasets.policy = replace(container.datasets.policy, inline_parse_s=0)
    # WHEN a small file is uploaded THEN the request hands it to the worker instead of failing it
    slow_inline = await _upload(client, alice, "sales.csv", SALES_CSV)
    assert slow_inline.status_code == 201 and slow_inline.json()["status"] == "processing"
    # AND a worker parse past its own limit fails the dataset with the reason and removes the bytes
    container.datasets.policy = replace(policy, limits=replace(policy.limits, max_parse_s=0))
    await ports.queue.start(container.messages.handle)
    try:
        await ports.queue.join()
    finally:
        await ports.queue.stop()
    failed = (await client.get(f"/api/datasets/{slow_inline.json()['_id']}", headers=alice.headers)).json()
    assert failed["status"] == "failed"
    assert "took more than 0 s to parse" in failed["error"] and "at most 0 s is allowed" in failed["error"]
    assert _stored_objects(ports) == []


async def test_presigned_upload_flow(
    client: httpx.AsyncClient, alice: Account, ports: LocalPorts, container: Container
) -> None:
    ticket = await client.post(
        "/api/datasets/uploads", headers=alice.headers, json={"filename": "sales.csv", "size": len(SALES_CSV)}
    )
    assert ticket.status_code == 201, ticket.text
    body = ticket.json()
    assert body["dataset"]["status"] == "awaiting_upload"
    # Confirming before the bytes arrive is refused
    early = await client.post(body["complete_url"], headers=alice.headers)
    assert early.status_code == 400
    put = await client.put(body["upload"]["url"], content=SALES_CSV, headers=body["upload"]["headers"])
    assert put.status_code == 200, put.text
    await ports.queue.start(container.messages.handle)
    try:
        done = await client.post(body["complete_url"], headers=alice.headers)
        assert done.status_code == 202 and done.json()["status"] == "processing"
        await ports.queue.join()
    finally:
        await ports.queue.stop()
    final = (await client.get(f"/api/datasets/{body['dataset']['_id']}", headers=alice.headers)).json()
    assert final["status"] == "ready" and final["row_count"] == 3
    again = await client.post(body["complete_url"], headers=alice.headers)
    assert again.status_code == 409


async def test_delete_refused_while_a_job_uses_the_dataset(
    client: httpx.AsyncClient, alice: Account, container: Container
) -> None:
    dataset_id = (await _upload(client, alice, "s.csv", SALES_CSV)).json()["_id"]
    await container.job_repo.collection.insert_one(
        {"user_id": ObjectId(alice.user_id), "dataset_id": ObjectId(dataset_id), "status": "running"}
    )
    response = await client.delete(f"/api/datasets/{dataset_id}", headers=alice.headers)
    assert response.status_code == 409 and response.json()["code"] == "DATASET_IN_USE"


async def test_a_dataset_stuck_in_processing_is_retried_then_failed(
    client: httpx.AsyncClient, alice: Account, container: Container, ports: LocalPorts
) -> None:
    # GIVEN a large upload whose processing message was lost (the local queue is not consuming)
    container.datasets.policy = replace(container.datasets.policy, inline_parse_bytes=10)
    dataset_id = (await _upload(client, alice, "sales.csv", SALES_CSV)).json()["_id"]
    stale = {"$set": {"updated_at": datetime.now(UTC) - timedelta(hours=1)}}
    await container.dataset_repo.collection.update_one({"_id": ObjectId(dataset_id)}, stale)
    # WHEN the sweeper runs THEN the message is sent again
    assert await container.datasets.sweep() == 1
    assert ports.queue.pending >= 2
    # AND after the last attempt the dataset fails with a reason instead of staying `processing`
    for _ in range(2):
        await container.dataset_repo.collection.update_one({"_id": ObjectId(dataset_id)}, stale)
        await container.datasets.sweep()
    failed = (await client.get(f"/api/datasets/{dataset_id}", headers=alice.headers)).json()
    assert failed["status"] == "failed" and "upload the file again" in failed["error"]
